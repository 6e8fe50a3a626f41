"""S0b: U-Net with a Keras ResNet50 encoder, binary (sigmoid) head.

Skips at conv1_relu, conv2_block3_out, conv3_block4_out, conv4_block6_out;
bottleneck conv5_block3_out; four ConvTranspose 2x2/2 stages (512, 256,
128, 64) each followed by two 3x3 ReLU convs; 1x1 conv to one channel;
sigmoid binary cross-entropy ('sigmoid_bce'), Adam, accuracy. fluxseg adds
a fifth up stage by default (model_kwargs.full_resolution=True) so the mask
has the input's size: four stages from a stride-32 bottleneck end at stride
2. The four-stage, half-resolution graph (full_resolution=False:
40,969,985 parameters, 128x128x1 for 256x256x3) is for fidelity checks
(`fluxseg summary unet_resnet50`), not for training: its logits are half the
mask's size and the trainer only centre-crops masks (valid convolutions).

Commands:
    python launch.py --config experiments/s0b_unet_resnet50.py --workdir runs/s0b
    python launch.py --config experiments/s0b_unet_resnet50.py:voc --workdir runs/s0b_voc
    python launch.py --config experiments/s0b_unet_resnet50.py:pets --workdir runs/s0b_pets
Data: default = offline fluxseg_shapes with data.binary=True (object vs
background), 64x64 (any multiple of 32 works). ':voc' = fluxseg_voc2012
(VOCtrainval_11-May-2012.tar in the tfds manual dir), object vs background,
256x256 crops as in the seed. ':pets' = tfds oxford_iiit_pet (tfds build
oxford_iiit_pet, or data.download=True) as pet vs background through
data.mask_map, border pixels unscored, colour jitter. Weights: Keras
`resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5` (pretrained='keras',
'caffe' preprocessing comes with it); --config.pretrained=None trains from
scratch (then 'unit' preprocessing).
Expected: the original graph comes with no training run or figure; ':pets' with an
ImageNet encoder usually reaches ~0.9 foreground IoU (typical of published
pet fg/bg U-Nets; not measured here). Not measured here
(a ResNet50 U-Net trains at a few images/s on 2 CPU cores). For orientation
only: on shapes-binary a from-scratch run should beat the all-background
pixel accuracy of ~0.80 within a few hundred steps.
"""
import ml_collections

from fluxseg.train.config import base_config


def get_config(arg="shapes"):
    c = base_config()
    c.model = "unet_resnet50"
    c.model_kwargs = ml_collections.ConfigDict({"full_resolution": True})
    c.num_classes = 1
    c.loss = "sigmoid_bce"
    c.data.binary = True
    c.pretrained = "keras"
    c.optim.name = "adam"
    c.optim.learning_rate = 1e-4
    c.log_every_steps = 20
    if arg == "shapes":
        c.data.name = "fluxseg_shapes"
        c.data.crop_size = (64, 64)
        c.batch_size = 16
        c.num_train_steps = 1000
        c.eval_every_steps = 500
    elif arg == "voc":
        c.data.name = "fluxseg_voc2012"
        c.data.crop_size = (256, 256)
        c.data.scale_range = (0.5, 2.0)
        c.data.eval_size = (512, 512)
        c.batch_size = 16
        c.num_epochs = 30.0
        c.eval_every_steps = 1000
        c.checkpoint_every_steps = 1000
    elif arg == "pets":
        c.data.name = "oxford_iiit_pet"
        c.data.eval_split = "test"
        # Trimaps store 1 = pet, 2 = background, 3 = border: pet vs background,
        # the uncertain border unscored.
        c.data.mask_map = (255, 1, 0, 255)
        c.data.binary = False
        c.data.crop_size = (256, 256)
        c.data.scale_range = (0.6, 1.2)
        c.data.color_jitter = (0.2, 0.2, 0.2)
        c.data.eval_mode = "resize"
        c.data.eval_size = (256, 256)
        c.batch_size = 16
        c.num_epochs = 20.0
        c.eval_every_steps = 1000
        c.checkpoint_every_steps = 1000
    else:
        raise ValueError(f"s0b_unet_resnet50.py:{arg}: expected ':shapes', ':voc' or ':pets'")
    return c
