"""S1: "Car or Truck" with a pretrained VGG16 base and global average pooling (seed 001).

The seed's transfer-learning classifier: VGG16 convolutional base (ImageNet,
frozen), GlobalAvgPool2D, Dense(1, sigmoid); binary cross-entropy, Adam.
The data is a folder with one sub-folder per class, the Kaggle course's
layout (train/Car, train/Truck, valid/Car, valid/Truck), read by
`fluxseg_image_folder`.

Commands:
    python launch.py --config experiments/s1_car_or_truck.py --workdir runs/s1 \
        --config.data.manual_dir=CAR_OR_TRUCK_FOLDER
Data: any class-folder dataset with two classes (train/ and valid/ or
validation/, or one folder per class and data.validation_fraction); images
resized to 128x128 as in the course. Weights: Keras
`vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5` (pretrained='keras').
Expected: the Kaggle course reports ~0.85-0.9 validation accuracy after a
few epochs with the frozen base (not measured here: no dataset offline, no
GPU).
"""
import ml_collections

from fluxseg.train.config import base_config


def get_config(arg="folder"):
    if arg != "folder":
        raise ValueError(f"s1_car_or_truck.py:{arg}: expected ':folder'")
    c = base_config()
    c.model = "gap_classifier"
    c.model_kwargs = ml_collections.ConfigDict({"backbone": "vgg16", "freeze_backbone": True})
    c.num_classes = 1
    c.loss = "sigmoid_bce"
    c.pretrained = "keras"
    c.data.task = "classification"
    c.data.name = "fluxseg_image_folder"
    c.data.crop_size = (128, 128)
    c.data.scale_range = (1.0, 1.0)
    c.data.random_resized_crop = True
    c.data.eval_mode = "resize"
    c.data.eval_size = (128, 128)
    c.optim.name = "adam"
    c.optim.learning_rate = 1e-3
    c.batch_size = 64
    c.num_epochs = 30.0
    c.log_every_steps = 20
    c.eval_every_steps = 200
    c.checkpoint_every_steps = 200
    c.best_metric = "top1"
    return c
