"""S0a: a hybrid classifier — frozen VGG16 -> x32 upsample -> ResNet50.

Graph (fluxseg.models 'hybrid_vgg16_resnet50'): VGG16 without top (Keras
ImageNet weights, frozen: optim.frozen defaults to the model's own ^vgg16/),
nearest x32 upsampling back to the input size, 1x1 conv + ReLU to 3
channels, ResNet50 without top (Keras ImageNet weights, trainable), global
average pooling, Dense 1024 ReLU, Dense 512 ReLU, Dense 10. Adam (Keras
defaults, lr 1e-3), softmax cross-entropy ("categorical_crossentropy"),
accuracy (top-1) tracked. Any input side that is a multiple of 32 works;
224 is the ImageNet size both backbones were trained at.

Commands:
    python launch.py --config experiments/s0a_hybrid.py --workdir runs/s0a
    python launch.py --config experiments/s0a_hybrid.py:shapes --workdir runs/s0a_shapes
Data: ':imagenette' (default) = tfds `imagenette/320px-v2` (10 ImageNet
classes; needs --config.data.download=True or a prepared data_dir). Weights:
Keras `vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5` and
`resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5` where
fluxseg.weights.hub looks for them (or --config.pretrained_path=DIR).
':shapes' = the offline fluxseg_shapes labels (5 classes, 64x64), no
pretrained weights: a smoke run of the whole path, nothing to compare.
Expected: no published figure exists for this graph. Its size is checked:
40,932,045 parameters, 26,164,237 trainable, 14,767,808 non-trainable (the
model tests, equal to the same graph built in Keras). No training result was
measured here (no GPU, no ImageNet files offline).
"""
import ml_collections

from fluxseg.train.config import base_config


def get_config(arg="imagenette"):
    c = base_config()
    c.model = "hybrid_vgg16_resnet50"
    c.model_kwargs = ml_collections.ConfigDict()
    c.data.task = "classification"
    c.loss = "softmax_ce"
    c.optim.name = "adam"
    c.optim.learning_rate = 1e-3
    c.best_metric = "top1"
    if arg == "imagenette":
        c.num_classes = 10
        c.pretrained = "keras"
        c.data.name = "imagenette/320px-v2"
        c.data.eval_split = "validation"
        c.data.crop_size = (224, 224)
        c.data.scale_range = (0.7, 1.0)
        c.data.eval_mode = "resize"
        c.batch_size = 32
        c.num_epochs = 10.0
        c.log_every_steps = 50
        c.eval_every_steps = 1000
        c.checkpoint_every_steps = 1000
    elif arg == "cifar10":
        c.num_classes = 10
        c.pretrained = "keras"
        c.data.name = "cifar10"
        c.data.eval_split = "test"
        c.data.scale_range = (7.0, 7.0)    # 32 -> 224 px: the hybrid's fixed input size
        c.data.crop_size = (224, 224)
        c.data.eval_mode = "resize"
        c.data.eval_size = (224, 224)
        c.batch_size = 32
        c.num_epochs = 5.0
        c.log_every_steps = 50
        c.eval_every_steps = 2000
        c.checkpoint_every_steps = 2000
    elif arg == "shapes":
        c.data.name = "fluxseg_shapes"
        c.data.crop_size = (64, 64)
        c.batch_size = 8
        c.num_train_steps = 20
        c.log_every_steps = 5
        c.init_rng_impl = "rbg"
    else:
        raise ValueError(f"s0a_hybrid.py:{arg}: expected ':imagenette', ':cifar10' or ':shapes'")
    return c
