"""The training config: one key per concept, checks that name the key, migration of old saved configs."""
import pytest

from fluxseg.train import config as config_lib
from fluxseg.train.config import ConfigError, base_config


@pytest.mark.parametrize("values,says", [
    ({"batch_size": 0}, "config.batch_size=0; expected a positive integer"),
    ({"eval_every_steps": -1}, "config.eval_every_steps=-1; expected an integer >= 0"),
    ({"best_mode": "lowest"}, "config.best_mode='lowest'; expected one of 'max', 'min'"),
    ({"model": "unet3"}, "expected a registered model: cnn_small"),
    ({"model_kwargs": {"featurez": 3}}, "unet has no option(s) ['featurez']; its options are: "),
    ({"model_kwargs": {"num_classes": 3}}, "set --config.num_classes instead"),
    ({"loss": "softmax_ce+focal"}, "config.loss: unknown loss 'focal'"),
    ({"loss": "sigmoid_bce"}, "set --config.num_classes=1"),
    ({"num_classes": 1}, "a binary (one-channel) head takes loss='sigmoid_bce'"),
    ({"num_classes": 0}, "config.num_classes=0; expected a positive integer"),
    ({"num_classes": 3, "class_weights": (1.0, 2.0)}, "config.class_weights=(1.0, 2.0); expected one weight >= 0 per class (3)"),
    ({"optim": {"name": "lamb"}}, "config.optim.name='lamb'; expected one of 'sgd', 'adam', 'adamw', 'rmsprop'"),
    ({"optim": {"accum_steps": 0}}, "config.optim.accum_steps=0; expected a positive integer"),
    ({"parallel": "ddp"}, "config.parallel='ddp'; expected one of 'pmap', 'jit'"),
    ({"dtype": "float64"}, "config.dtype='float64'; expected one of"),
    ({"preprocess": "imagenet"}, "config.preprocess='imagenet'; expected one of"),
    ({"pretrained": "timm"}, "config.pretrained='timm'; expected one of 'keras', 'torchvision'"),
    ({"isbi_metrics": True, "data": {"task": "classification"}}, "config.isbi_metrics=True scores segmentation"),
    ({"data": {"name": "No Such"}}, "data.name='No Such'; expected one of fluxseg's datasets"),
    ({"data": {"ignore_index": 300}}, "data.ignore_index=300 must fit in uint8 masks"),
    ({"ignore_index": 0}, "config.ignore_index is config.data.ignore_index now"),
    ({"task": "classification"}, "config.task is config.data.task now"),
    ({"data": {"num_classes": 3}}, "config.data.num_classes is config.num_classes now"),
    ({"optim": {"epz": 1.0}}, "config.optim.epz: the config has no such key; the keys of config.optim are"),
])
def test_a_bad_value_is_an_error_naming_the_key_and_what_it_accepts(values, says):
    c = base_config()
    c.update(values)
    with pytest.raises(ConfigError) as err:
        config_lib.check(c)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_the_defaults_and_a_binary_head_pass():
    config_lib.check(base_config())
    c = base_config()
    c.update({"num_classes": 1, "loss": "sigmoid_bce+dice", "class_weights": (1.0, 3.0)})
    config_lib.check(c)


class _Info:
    num_examples = {"train": 100}

    def __init__(self, names):
        self.class_names = names
        self.num_classes = None if names is None else len(names)


def test_resolve_takes_the_class_count_from_the_data_or_says_what_is_missing():
    assert config_lib.resolve(base_config(), _Info(("a", "b", "c"))).num_classes == 3
    c = base_config()
    c.num_classes = 1  # a binary head on any data
    assert config_lib.resolve(c, _Info(("a", "b", "c"))).num_classes == 1
    with pytest.raises(ConfigError, match=r"config.num_classes=4 but fluxseg_shapes has 3 classes"):
        c.num_classes = 4
        config_lib.resolve(c, _Info(("a", "b", "c")))
    with pytest.raises(ConfigError, match="does not say how many classes it has; set --config.num_classes"):
        config_lib.resolve(base_config(), _Info(None))
    c = base_config()
    c.num_classes, c.num_epochs, c.batch_size = 7, 2.5, 10
    resolved = config_lib.resolve(c, _Info(None))  # a count the data does not know: taken as given
    assert (resolved.num_classes, resolved.num_train_steps, resolved.eval_batch_size) == (7, 25, 10)
    assert c.num_train_steps == base_config().num_train_steps  # the argument is left as it was


def test_migrate_moves_the_keys_of_earlier_versions_and_leaves_its_argument():
    old = {"task": "classification", "num_classes": 1, "ignore_index": 0,
           "data": {"task": "segmentation", "ignore_index": 255, "num_classes": 5, "name": "x"}}
    new = config_lib.migrate(old)
    assert new == {"num_classes": 1, "data": {"task": "classification", "ignore_index": 0, "name": "x"}}
    assert old["task"] == "classification" and old["data"]["num_classes"] == 5
    # A data.num_classes given for a dataset without class names, the top level resolved to None:
    assert config_lib.migrate({"num_classes": None, "data": {"num_classes": 4}})["num_classes"] == 4
