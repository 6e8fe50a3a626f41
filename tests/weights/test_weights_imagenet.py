"""ImageNet class names and top-k decoding."""
import json

import numpy as np
import pytest

from fluxseg.weights import IMAGENET_CLASSES, decode_predictions


def test_class_names():
    assert len(IMAGENET_CLASSES) == 1000
    assert IMAGENET_CLASSES[386] == "African elephant"  # the Grad-CAM example of Deep Learning with Python §5.4.3
    assert (IMAGENET_CLASSES[0], IMAGENET_CLASSES[101], IMAGENET_CLASSES[999]) == ("tench", "tusker", "toilet tissue")


def test_class_names_match_torchvision(torch_ref):
    assert list(IMAGENET_CLASSES) == json.loads(torch_ref.file("imagenet_categories.json").read_text())


def test_decode_predictions():
    logits = np.zeros((2, 1000), np.float32)
    logits[0, [386, 101, 7]] = [5.0, 4.0, 3.0]
    logits[1, 0] = 1.0
    first, second = decode_predictions(logits, top=3)
    assert [(i, n) for i, n, _ in first] == [(386, "African elephant"), (101, "tusker"), (7, "cock")]
    e = np.exp([5.0, 4.0, 3.0])
    assert np.isclose(first[0][2], e[0] / (e.sum() + 997))
    assert second[0][:2] == (0, "tench") and len(second) == 3
    single = decode_predictions(logits[0], top=1)
    assert single == [first[0]]
    with pytest.raises(ValueError, match="1000"):
        decode_predictions(np.zeros((1, 10)))
