"""S4: the original U-Net (Ronneberger et al. 2015, Fig. 1).

Unpadded ('valid') 3x3 convs, channels 64-128-256-512-1024, 2x2 up-convs
halving the channels, crop-and-concatenate along channels (axis -1 in
NHWC; axis 1 would stack rows, a common porting slip), 1x1 conv to 2
classes: 31,030,658 parameters for a 572x572x1 input, output 388x388x2
(RGB input adds 1,152 weights to the first conv). Only sizes whose pooled
maps are all even are valid (188, 204, ..., 572, ...); the trainer
centre-crops each target mask to the logits (the paper's loss is on the
output tile only) and `fluxseg.predict` predicts any image size with the
paper's overlap-tile strategy (mirror-padded context).

Commands:
    python launch.py --config experiments/s4_unet.py --workdir runs/s4
    python launch.py --config experiments/s4_unet.py:voc --workdir runs/s4_voc
    python launch.py --config experiments/s4_unet.py:isbi --workdir runs/s4_isbi \
        --config.data.manual_dir=DIR_WITH_THE_THREE_TIFS
Data: default ':shapes' = offline fluxseg_shapes as object-vs-background
(data.binary), each 64x64 image enlarged 4x and cropped to 252x252 (a valid
size: 68x68 output tile), base width 16 so that it fits a CPU; the eval
batches are resized to 252 and scored on their centre 68x68 tile (exact
whole-image scores: `fluxseg.predict` per image). ':voc' = fluxseg_voc2012
object vs background with the paper's 572x572 tiles and base width 64
(VOC tar in the tfds manual dir; a GPU). ':isbi' = the paper's own data and
recipe: fluxseg_isbi2012 (train-volume.tif, train-labels.tif,
test-volume.tif in data.manual_dir; 25 train / 5 validation slices, one
grey channel: 31,030,658 parameters), overlap-tile crops (572 input, its
388 output tile inside the slice, 92 px of mirrored context), elastic
deformation (3x3 grid, sigma 10 px), flips, the border weight map (w0 = 10,
sigma = 5 px) in the loss, batch 1, momentum 0.99. The in-training eval
scores each validation slice's central 388x388 tile (a 572 pad window);
whole-slice pixel and Rand errors: `fluxseg eval` / fluxseg.tasks.isbi.
Expected: ':isbi': the
paper's challenge test-set figures (Ronneberger et al. 2015, Table 1):
warping error 0.000353, Rand error 0.0382, pixel error 0.0611; on the
5 held-out training slices expect pixel error ~0.06-0.08 and a Rand error
a few times 0.01 (not measured here: no GPU and no challenge files). Nothing was measured here: even width 16 at 252x252
runs at a few images/s on 2 CPU cores.
"""
import ml_collections

from fluxseg.train.config import base_config


def get_config(arg="shapes"):
    c = base_config()
    c.model = "unet"
    c.num_classes = 2
    c.loss = "softmax_ce"
    c.data.binary = True
    c.optim.name = "sgd"
    c.optim.momentum = 0.99   # the paper: high momentum, batch of one large tile
    c.optim.learning_rate = 1e-3
    c.log_every_steps = 20
    if arg == "shapes":
        c.model_kwargs = ml_collections.ConfigDict({"features": 16, "padding": "valid"})
        c.data.name = "fluxseg_shapes"
        c.data.scale_range = (4.0, 4.0)
        c.data.crop_size = (252, 252)
        c.data.eval_mode = "resize"
        c.data.eval_size = (252, 252)
        c.batch_size = 4
        c.num_train_steps = 2000
        c.eval_every_steps = 1000
        c.checkpoint_every_steps = 500
        c.init_rng_impl = "rbg"
    elif arg == "voc":
        c.model_kwargs = ml_collections.ConfigDict({"features": 64, "padding": "valid"})
        c.data.name = "fluxseg_voc2012"
        c.data.crop_size = (572, 572)
        c.data.eval_mode = "resize"
        c.data.eval_size = (572, 572)
        c.batch_size = 4
        c.num_epochs = 50.0
        c.eval_every_steps = 2000
        c.checkpoint_every_steps = 1000
    elif arg == "isbi":
        c.model_kwargs = ml_collections.ConfigDict({"features": 64, "padding": "valid"})
        c.data.binary = False              # classes are already membrane 0 / cell 1
        c.data.name = "fluxseg_isbi2012"
        c.data.crop_size = (572, 572)
        c.data.mirror_margin = 92          # (572 - 388) / 2: the output tile lies in the slice
        c.data.elastic_sigma = 10.0
        c.data.elastic_grid = 3
        c.data.border_weight_w0 = 10.0
        c.data.border_weight_sigma = 5.0
        c.data.eval_mode = "pad"
        c.data.eval_size = (572, 572)
        c.data.cache = True                # 30 slices of 256 KiB
        c.batch_size = 1                   # the paper: one large tile per step
        c.optim.learning_rate = 0.01
        c.num_train_steps = 20000
        c.eval_every_steps = 1000
        c.checkpoint_every_steps = 1000
        c.isbi_metrics = True              # eval adds pixel_error and rand_error
        c.best_metric = "rand_error"
        c.best_mode = "min"
    else:
        raise ValueError(f"s4_unet.py:{arg}: expected ':shapes', ':voc' or ':isbi'")
    return c
