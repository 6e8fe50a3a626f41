"""Default experiment: a small U-Net (padding='same', BatchNorm) on fluxseg_shapes.

Command (either):
    python launch.py
    python launch.py --config experiments/default.py --workdir runs/default
Data: fluxseg_shapes (procedural, generated offline by tfds on first use,
~15 s; 2000 train / 300 validation 64x64 images, 6 classes incl.
background). Nothing downloads.
Model: unet, base width 8, 'same' padding (output = input size), BatchNorm
after every 3x3 conv (norm='batch'), 0.49 M parameters; softmax
cross-entropy + Dice; Adam 1e-2, cosine decay, 50 warmup steps; batch 16;
1500 steps (12 epochs); eval every 500 steps. BatchNorm keeps the run off the
all-background plateau on which the paper's U-Net (norm=None) sits for a
seed- and CPU-dependent number of steps; Dice lifts the small shape classes.
Expected: validation mIoU 0.865 ± 0.012 (0.847-0.877) over 7 runs, seeds 0-4
on the CPU's own instruction set and seeds 0, 1 under
XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 (chance, all background: 0.133), in about
a minute and a half on 2 CPU cores. The runs, the timings and the recipes
tried before: benchmarks/README.md ("learning_spread.py", "The training loop");
reproduce with
    python benchmarks/learning_spread.py --seeds 0,1,2,3,4 --isa native,SSE4_2 --steps 1500
Leaves in the workdir: checkpoints/, metrics.jsonl, tensorboard/,
predictions_<step>.png (image | truth | prediction), config.json,
environment.jsonl (code commit, packages, devices, XLA flags; a line per start).
The BatchNorm ablation over seeds: experiments/ablation_unet_batchnorm.py.
"""
import ml_collections

from fluxseg.train.config import base_config


def get_config(arg=None):
    del arg
    c = base_config()
    c.model = "unet"
    c.model_kwargs = ml_collections.ConfigDict({"features": 8, "padding": "same", "norm": "batch"})
    c.data.name = "fluxseg_shapes"
    c.data.crop_size = (64, 64)
    c.data.cache = True
    c.loss = "softmax_ce+dice"
    c.optim.name = "adam"
    c.optim.learning_rate = 1e-2
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 50
    c.batch_size = 16
    c.num_train_steps = 1500
    c.log_every_steps = 50
    c.eval_every_steps = 500
    c.checkpoint_every_steps = 500
    c.init_rng_impl = "rbg"  # the threefry init of this U-Net takes ~40 s to compile on CPU
    return c
