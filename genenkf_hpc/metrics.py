"""Verification metrics (pure, vectorised). Grid points are the last axis, members the one before.

Any leading axes (e.g. time) are kept: ``rmse`` of (time, nx) arrays is a (time,) series.
"""
from __future__ import annotations

import numpy as np


def rmse(mean, truth):
    """sqrt(mean_i (mean_i - truth_i)^2) over the last axis; mean, truth (..., nx) -> (...)."""
    err = np.asarray(mean, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    return np.sqrt(np.mean(err**2, axis=-1))


def spread(ens):
    """sqrt(mean_i var_k(ens_ki)), variance over members with ddof=1; ens (..., k, nx) -> (...)."""
    return np.sqrt(np.mean(np.var(np.asarray(ens, dtype=np.float64), axis=-2, ddof=1), axis=-1))


def spread_ratio(ens, truth):
    """spread(ens) / rmse(ensemble mean, truth), per leading index; 1 is well calibrated.

    For a time-mean ratio divide the time means of the two series instead of averaging this.
    """
    ens = np.asarray(ens, dtype=np.float64)
    return spread(ens) / rmse(ens.mean(axis=-2), truth)


def crps_ensemble(ens, truth, fair=False, average=True):
    """Continuous ranked probability score of an ensemble (lower is better).

    CRPS = E|X - y| - 1/2 E|X - X'| with the members as the distribution of X (standard,
    Gneiting & Raftery 2007 eq. 21): ``mean_k |x_k - y| - sum_{k,l} |x_k - x_l| / (2 k^2)``.
    ``fair=True`` divides the second sum by ``2 k (k - 1)`` instead (Ferro 2014: unbiased for the
    CRPS of the distribution the members are drawn from). ens (..., k, nx), truth (..., nx);
    returns the mean over grid points (...) or, with ``average=False``, per point (..., nx).
    The pair sum uses the sorted members: sum_{k,l} |x_k - x_l| = 2 sum_i (2 i - k - 1) x_(i).
    """
    ens = np.asarray(ens, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    k = ens.shape[-2]
    if fair and k < 2:
        raise ValueError("the fair CRPS needs at least 2 members")
    skill = np.mean(np.abs(ens - truth[..., None, :]), axis=-2)
    ranks = 2.0 * np.arange(1, k + 1) - k - 1.0
    pair_sum = 2.0 * np.einsum("...kn,k->...n", np.sort(ens, axis=-2), ranks)
    denom = 2.0 * k * (k - 1) if fair else 2.0 * k * k
    crps = skill - pair_sum / denom
    return crps.mean(axis=-1) if average else crps


def rank_histogram(ens_series, truth_series):
    """Talagrand rank histogram: counts (k + 1,) of the truth's rank among the members.

    ens_series (..., k, nx), truth_series (..., nx); every (leading index, point) contributes one
    count, rank = number of members strictly below the truth (0..k). Ties, of probability zero
    for continuous variables, are split: a truth equal to ``e`` members gets ``e // 2`` more.
    """
    ens = np.asarray(ens_series, dtype=np.float64)
    truth = np.asarray(truth_series, dtype=np.float64)[..., None, :]
    k = ens.shape[-2]
    below = np.sum(ens < truth, axis=-2)
    ties = np.sum(ens == truth, axis=-2)
    return np.bincount((below + ties // 2).ravel(), minlength=k + 1)
