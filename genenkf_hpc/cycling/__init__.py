"""The cycling driver behind ``genenkf assimilate``: forecast, analysis, diagnostics, restarts.

- :mod:`.registry`  methods by exact name (lazy imports, so torch loads only for genenkf);
- :mod:`.base`      the method classes' interface: ensemble methods (k-member forecast ensemble
                    distributed by member blocks) and simulation methods (one state replicated on
                    every rank), including pseudo-ensemble methods (sample members, then LETKF);
- :mod:`.classical` noda, nudging, enkf, etkf, letkf;
- :mod:`.driver`    the cycle loop for one forcing (MPI-parallel, restartable).
"""
