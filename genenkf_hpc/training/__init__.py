"""Helpers of ``genenkf train``: batches keyed by (seed, step), EMA and LR schedule, checkpoint
state, validation and evaluation of the sampling model."""
