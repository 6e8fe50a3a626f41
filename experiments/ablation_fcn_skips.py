"""Ablation (d2l.ai §13.11 exercise 4; Long et al. 2015 §4.2): FCN-32s vs 16s vs 8s.

16s adds a skip from ResNet-18's layer3 (stride 16), 8s also from layer2
(stride 8); each skip's 1x1 score conv starts at zero, so training starts
from the coarser net's output, and the 2x transposed convs are bilinear.

Commands:
    fluxseg sweep --config experiments/ablation_fcn_skips.py:shapes --workdir runs/ablation_fcn_skips
  runs the three variants x seeds 0-4 (get_sweep below) and writes the
  comparison with 32s to runs/ablation_fcn_skips/results.md
  (`fluxseg sweep report runs/ablation_fcn_skips --baseline variant=16s`
  compares with 16s instead). One run:
    python launch.py --config experiments/ablation_fcn_skips.py:8s,shapes --workdir runs/fcn8s
  Without ',shapes': the d2l VOC recipe of experiments/s3_fcn_resnet18.py.
Data: as s3_fcn_resnet18.py.
Expected: Long et al. (VGG16, VOC2011 val): mIoU 59.4 (32s), 62.4 (16s),
62.7 (8s) — the paper's figures. Measured here on 'shapes' (ResNet-18 width
16, bilinear, Adam 3e-3 cosine, 1500 steps; seeds 0-4 each, 2026-12-06, 2
shared cores of an AMD EPYC with AVX-512, 2-2.5 min a run), final
validation mIoU, mean ± std (min-max):
  32s 0.283 ± 0.006 (0.274-0.289)   16s 0.371 ± 0.009 (0.354-0.377)   8s 0.448 ± 0.014 (0.432-0.460)
16s - 32s = +0.088 (95% CI +0.076 to +0.100, Welch p=5e-7), 8s - 32s = +0.165
(+0.148 to +0.182, p=1e-6), 8s - 16s = +0.077 (+0.059 to +0.095, p=2e-5), n=5
each: every finer skip is higher, far beyond the seed-to-seed spread; pixel
accuracy 0.827 ± 0.003, 0.854 ± 0.002, 0.879 ± 0.004. (32s is
ablation_fcn_init.py's bilinear variant: the same five runs to the last
digit, trained twice.) Finer skips matter far more on 64x64 images, where
the stride-32 map is 2x2, than on VOC.
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
