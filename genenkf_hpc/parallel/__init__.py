"""The parallel layer: the only package that imports mpi4py or torch.distributed."""
