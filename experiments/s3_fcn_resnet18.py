"""S3: the d2l.ai FCN (§13.11) on ResNet-18.

ResNet-18 (torchvision ImageNet weights) without pooling and fc; 1x1 conv to
21 classes (Xavier); ConvTranspose k64 s32 p16 initialised with the bilinear
kernel; output at the input's size. d2l's PyTorch recipe: VOC2012 random
crops 320x480, batch 32, softmax cross-entropy over pixels, plain SGD
(no momentum) lr 0.001, weight decay 1e-3, 5 epochs. fluxseg ignores VOC's
255 boundary pixels (d2l folds them into background). Prediction of whole
test images: `fluxseg.predict` covers them with 320x480 tiles and averages
the logits (d2l's prescription for sides that are not multiples of 32).

Commands:
    python launch.py --config experiments/s3_fcn_resnet18.py --workdir runs/s3
    python launch.py --config experiments/s3_fcn_resnet18.py:shapes --workdir runs/s3_shapes
  Arguments (comma-separated): 'voc' (default) or 'shapes'; '32s'|'16s'|'8s'
  (FCN variant, default 32s); 'bilinear'|'xavier' (transposed-conv init).
  The chapter's exercises on the init and the skips are
  experiments/ablation_fcn_init.py and experiments/ablation_fcn_skips.py.
Data: 'voc' = fluxseg_voc2012 (VOCtrainval_11-May-2012.tar in the tfds
manual dir) and torchvision `resnet18-f37072fd.pth` where fluxseg.weights.hub
looks for it (or --config.pretrained_path=FILE). 'shapes' = offline
fluxseg_shapes (64x64, 6 classes), ResNet-18 at width 16, from scratch,
Adam: a CPU-sized stand-in with the same graph.
Expected: 'voc': test pixel accuracy 0.828 (d2l's PyTorch figure; 0.843
with MXNet at lr 0.1) — not measured here (no VOC, no GPU). 'shapes'
(32s, bilinear; 1500 steps, 2-3 min on 2 CPU cores): validation mIoU
0.283 ± 0.006, pixel accuracy 0.827 ± 0.003 over seeds 0-4 (measured, see
ablation_fcn_init.py); 16s and 8s do much better, see ablation_fcn_skips.py.
"""
import ml_collections

from fluxseg.train.config import base_config


def get_config(arg="voc"):
    args = [a for a in (arg or "voc").split(",") if a]
    data = "shapes" if "shapes" in args else "voc"
    variant = next((a for a in args if a in ("32s", "16s", "8s")), "32s")
    init = next((a for a in args if a in ("bilinear", "xavier")), "bilinear")
    unknown = set(args) - {"voc", "shapes", "32s", "16s", "8s", "bilinear", "xavier"}
    if unknown:
        raise ValueError(f"s3_fcn_resnet18.py: unknown argument(s) {sorted(unknown)}")
    c = base_config()
    c.model = "fcn_resnet18"
    c.model_kwargs = ml_collections.ConfigDict({"variant": variant, "transpose_init": init})
    c.loss = "softmax_ce"
    if data == "voc":
        c.pretrained = "torchvision"
        c.data.name = "fluxseg_voc2012"
        c.data.crop_size = (320, 480)
        c.data.scale_range = (1.0, 1.0)
        c.data.hflip = False
        c.data.eval_size = (512, 512)   # pad mode: every val pixel at its own resolution
        c.optim.name = "sgd"
        c.optim.momentum = 0.0
        c.optim.learning_rate = 0.001
        c.optim.weight_decay = 1e-3
        c.batch_size = 32
        c.eval_batch_size = 16
        c.num_epochs = 5.0
        c.log_every_steps = 10
        c.eval_every_steps = 0
        c.checkpoint_every_steps = 50
    else:
        c.model_kwargs.width = 16
        c.data.name = "fluxseg_shapes"
        c.data.crop_size = (64, 64)
        c.data.cache = True
        c.optim.name = "adam"
        c.optim.learning_rate = 3e-3
        c.optim.schedule = "cosine"
        c.optim.warmup_steps = 50
        c.batch_size = 16
        c.num_train_steps = 1500
        c.log_every_steps = 50
        c.checkpoint_every_steps = 1500
        c.init_rng_impl = "rbg"
    return c
