"""One module per command. Each has HELP, add_arguments(parser) and run(args, cfg, ctx)
(or run(args) when USES_CONFIG is False). Workflows compose kernels, parallel and I/O."""
