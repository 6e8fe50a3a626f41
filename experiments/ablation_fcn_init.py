"""Ablation (d2l.ai §13.11, exercise 1): Xavier instead of bilinear init of
the FCN's transposed convolution.

Commands (one run each; compare validation mIoU / pixel_acc in metrics.jsonl):
    python launch.py --config experiments/ablation_fcn_init.py:bilinear,shapes --workdir runs/fcn_bilinear
    python launch.py --config experiments/ablation_fcn_init.py:xavier,shapes --workdir runs/fcn_xavier
  Without ',shapes' the runs use the full d2l VOC recipe of
  experiments/s3_fcn_resnet18.py (VOC tar and resnet18 torchvision weights).
Data: as s3_fcn_resnet18.py.
Expected: d2l recommends the bilinear initialisation (no figure given).
Measured here on 'shapes' (FCN-32s, width 16, Adam 3e-3 cosine, 1500 steps,
one seed, 2-3 min each on 2 CPU cores), validation mIoU / pixel accuracy:
  bilinear 0.276 / 0.826      xavier 0.336 / 0.849
(at 600 steps: 0.205 vs 0.241). On these 64x64 images FCN-32s upsamples a
2x2 score map, and the fixed-looking bilinear start is not an advantage with
Adam; the d2l claim concerns VOC with SGD and pretrained features, which
needs the 'voc' runs.
"""
import os

from fluxseg.sweep.grid import product, sweep
from fluxseg.train.config import load_config_file


def _s3():
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "s3_fcn_resnet18.py"))


def get_config(arg="bilinear"):
    """'bilinear' (default) or 'xavier', optionally ',shapes' (see s3_fcn_resnet18.py)."""
    args = [a for a in (arg or "").split(",") if a]
    return _s3().get_config(",".join(args or ["bilinear"]))


def get_sweep(arg=None):
    """Both inits (bilinear first: the baseline) x seeds 0-4."""
    del arg
    return product(sweep("model_kwargs.transpose_init", ["bilinear", "xavier"]), sweep("seed", range(5)))
