"""S2: Chollet's small cats-vs-dogs convnet (Deep Learning with Python §5.2).

150x150x3 input; Conv 32/64/128/128 (3x3 ReLU, valid), each followed by
2x2 max pooling; Flatten; Dropout 0.5; Dense 512 ReLU; Dense 1 (sigmoid in
the loss): 3,453,121 parameters. RMSprop lr 1e-4, binary cross-entropy,
accuracy; batch 32, 100 steps an epoch for 100 epochs, with augmentation
(Chollet: rotations, shifts, shear, zoom, flips; here random rescaling,
crops and flips, what the fluxseg pipeline offers).

Commands:
    python launch.py --config experiments/s2_cnn_small.py --workdir runs/s2
    python launch.py --config experiments/s2_cnn_small.py:shapes --workdir runs/s2_shapes
Data: default = tfds `cats_vs_dogs` (needs --config.data.download=True or a
prepared data_dir), with Chollet's small subset: the first 2000 images to
train, the next 1000 to validate. ':shapes' = offline fluxseg_shapes labels
(5 classes, softmax head), a smoke run of the classification path.
Expected: ~0.82 validation accuracy (Chollet's figure for this model with
augmentation and dropout; not measured here: no download offline). After
training, `fluxseg.restore(workdir)` gives the model and variables, and
`fluxseg.models.features` its activations by layer name (conv2d,
max_pooling2d, ...), as §5.4 of the book plots them.
"""
import ml_collections

from fluxseg.train.config import base_config


def get_config(arg="cats_vs_dogs"):
    c = base_config()
    c.model = "cnn_small"
    c.model_kwargs = ml_collections.ConfigDict()
    c.data.task = "classification"
    c.optim.name = "rmsprop"
    c.optim.learning_rate = 1e-4
    c.optim.eps = 1e-7  # Keras RMSprop
    c.best_metric = "top1"
    if arg == "cats_vs_dogs":
        c.num_classes = 1
        c.loss = "sigmoid_bce"
        c.data.name = "cats_vs_dogs"
        c.data.train_split = "train[:2000]"
        c.data.eval_split = "train[2000:3000]"
        c.data.crop_size = (150, 150)
        c.data.scale_range = (0.4, 0.6)   # ~300-500 px photos -> crops of ~150 px
        c.data.eval_mode = "resize"
        c.batch_size = 32
        c.num_train_steps = 100 * 100
        c.log_every_steps = 100
        c.eval_every_steps = 1000
        c.checkpoint_every_steps = 1000
    elif arg == "folder":
        c.num_classes = 1                 # two class folders (cats/, dogs/): one sigmoid logit
        c.loss = "sigmoid_bce"
        c.data.name = "fluxseg_image_folder"   # --config.data.manual_dir=FOLDER
        c.data.crop_size = (150, 150)
        c.data.random_resized_crop = True      # photos of any size -> 150x150 crops
        c.data.eval_mode = "resize"
        c.data.eval_size = (150, 150)
        c.batch_size = 32
        c.num_train_steps = 100 * 100
        c.log_every_steps = 100
        c.eval_every_steps = 1000
        c.checkpoint_every_steps = 1000
    elif arg == "shapes":
        c.loss = "softmax_ce"
        c.data.name = "fluxseg_shapes"
        c.data.scale_range = (2.35, 2.35)  # 64 -> 150 px, the model's fixed input
        c.data.crop_size = (150, 150)
        c.data.eval_mode = "resize"
        c.data.eval_size = (150, 150)
        c.optim.learning_rate = 1e-3
        c.batch_size = 16
        c.num_train_steps = 200
        c.log_every_steps = 20
        c.init_rng_impl = "rbg"
    else:
        raise ValueError(f"s2_cnn_small.py:{arg}: expected ':cats_vs_dogs', ':folder' or ':shapes'")
    return c
