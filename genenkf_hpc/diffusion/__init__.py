"""Observation-conditioned diffusion model (pure torch): schedule, U-Net, samplers, guidance.

Entry point for the Generative EnKF: :func:`genenkf_hpc.diffusion.bundle.sample_pseudo_ensemble`
with a model from :func:`genenkf_hpc.diffusion.bundle.load_bundle`. See docs/diffusion.md.
"""
