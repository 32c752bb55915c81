"""genenkf_hpc: Generative EnKF (diffusion-model pseudo-ensembles + parallel LETKF) for HPC."""

__version__ = "0.1.0"
