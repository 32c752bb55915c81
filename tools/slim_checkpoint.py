#!/usr/bin/env python3
"""Make a small sampling-only copy of a `genenkf train` checkpoint for shipping.

    python tools/slim_checkpoint.py runs/train/checkpoints/latest.pt models/l96_paper_small.pt

Keeps the architecture, schedule, normalisation, config and step; stores the EMA weights (the
ones used for sampling) as ``model`` and drops the optimizer state and the raw weights, about a
quarter of the size. The result loads with ``torch.load(path, weights_only=True)`` like any
checkpoint of ours but cannot resume training.
"""
import sys

from genenkf_hpc.io.checkpoint import load_checkpoint, save_checkpoint


def main(src: str, dst: str) -> None:
    ckpt = load_checkpoint(src)
    slim = {k: v for k, v in ckpt.items() if k not in ("optimizer", "ema", "model", "rng")}
    slim["model"] = ckpt.get("ema", ckpt["model"])
    slim["sampling_only"] = True
    save_checkpoint(dst, slim)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
