"""Ablation (d2l.ai §13.11 exercise 4; Long et al. 2015 §4.2): FCN-32s vs 16s vs 8s.

16s adds a skip from ResNet-18's layer3 (stride 16), 8s also from layer2
(stride 8); each skip's 1x1 score conv starts at zero, so training starts
from the coarser net's output, and the 2x transposed convs are bilinear.

Commands (compare validation mIoU in each workdir's metrics.jsonl):
    python launch.py --config experiments/ablation_fcn_skips.py:32s,shapes --workdir runs/fcn32s
    python launch.py --config experiments/ablation_fcn_skips.py:16s,shapes --workdir runs/fcn16s
    python launch.py --config experiments/ablation_fcn_skips.py:8s,shapes --workdir runs/fcn8s
  Without ',shapes': the d2l VOC recipe of experiments/s3_fcn_resnet18.py.
Data: as s3_fcn_resnet18.py.
Expected: Long et al. (VGG16, VOC2011 val): mIoU 59.4 (32s), 62.4 (16s),
62.7 (8s) — the paper's figures. Measured here on 'shapes' (ResNet-18 width
16, bilinear, Adam 3e-3 cosine, 1500 steps, one seed, 2-3 min each on 2 CPU
cores), validation mIoU / pixel accuracy:
  32s 0.276 / 0.826      16s 0.367 / 0.854      8s 0.460 / 0.880
(at 600 steps: 0.205, 0.255, 0.296). Finer skips matter far more on 64x64
images, where the stride-32 map is 2x2, than on VOC.
"""
import os

from fluxseg.sweep.grid import product, sweep
from fluxseg.train.config import load_config_file


def _s3():
    return load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "s3_fcn_resnet18.py"))


def get_config(arg="8s"):
    """'32s', '16s' or '8s' (default), optionally ',shapes' (see s3_fcn_resnet18.py)."""
    args = [a for a in (arg or "").split(",") if a]
    if not {"32s", "16s", "8s"} & set(args):
        args.append("8s")
    return _s3().get_config(",".join(args))


def get_sweep(arg=None):
    """The three variants (32s first: the baseline) x seeds 0-4."""
    del arg
    return product(sweep("model_kwargs.variant", ["32s", "16s", "8s"]), sweep("seed", range(5)))
