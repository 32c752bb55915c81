"""Pure dynamical-model kernels."""
