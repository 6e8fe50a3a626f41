"""Ablation: the default experiment's U-Net with and without BatchNorm.

The default experiment (experiments/default.py: a width-8 padded U-Net on
fluxseg_shapes, softmax CE + Dice, Adam 1e-2 cosine, 1500 steps) puts
BatchNorm after every 3x3 conv (Ioffe & Szegedy 2015); the paper's U-Net
(Ronneberger et al. 2015) has none. This sweep trains both, the same recipe
otherwise.

Commands:
    fluxseg sweep --config experiments/ablation_unet_batchnorm.py --workdir runs/ablation_unet_batchnorm
    python launch.py --config experiments/ablation_unet_batchnorm.py:none --workdir runs/unet_nobn  # one run
Data: fluxseg_shapes (offline, as default.py).
Expected: RESULTS
"""
from fluxseg.sweep.grid import product, sweep
from fluxseg.train.config import load_config_file


def get_config(arg="batch"):
    """'batch' (default.py as it is) or 'none' (no normalisation, conv biases back)."""
    import os

    if arg not in ("batch", "none"):
        raise ValueError(f"ablation_unet_batchnorm.py: expected ':batch' or ':none', got {arg!r}")
    c = load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "default.py")).get_config()
    c.model_kwargs.norm = arg
    return c


def get_sweep(arg=None):
    """With BatchNorm (the baseline) and without, x seeds 0-4."""
    del arg
    return product(sweep("model_kwargs.norm", ["batch", "none"]), sweep("seed", range(5)))
