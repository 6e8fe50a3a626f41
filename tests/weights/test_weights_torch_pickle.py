"""Reading torch.save files without torch: both layouts, odd tensors, state-dict wrappers, and refusal of code."""
import io
import os
import pickle
import zipfile

import numpy as np
import pytest

from fluxseg.weights import convert_torchvision, tree
from fluxseg.weights.torch_pickle import load_pth


@pytest.mark.parametrize("name", ["misc.pth", "misc_legacy.pth"])
def test_odd_tensors(torch_ref, name):
    """Non-contiguous, float16, int64 beyond 32 bits, bool and 0-d tensors come back exactly."""
    got = load_pth(torch_ref.file(name))
    for key in ("transposed", "half", "long", "flag", "scalar"):
        want = torch_ref.arrays[f"misc/{key}"]
        assert got[key].dtype == want.dtype and got[key].shape == want.shape
        np.testing.assert_array_equal(got[key], want)


def test_legacy_layout_equals_zip_layout(torch_ref):
    a = load_pth(torch_ref.file("resnet18-f37072fd.pth"))
    b = load_pth(torch_ref.file("resnet18_legacy.pth"))
    assert list(a) == list(b)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_state_dict_wrappers_and_bad_keys(torch_ref):
    sd = load_pth(torch_ref.file("resnet18-f37072fd.pth"))
    ref = tree.flatten(convert_torchvision(sd, "resnet18"))
    wrapped = {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}
    got = tree.flatten(convert_torchvision(wrapped, "resnet18"))
    assert got.keys() == ref.keys() and all(np.array_equal(got[k], ref[k]) for k in ref)
    with pytest.raises(ValueError, match="not part of torchvision's resnet18: \\['features.0.weight'\\]"):
        convert_torchvision({**sd, "features.0.weight": sd["conv1.weight"]}, "resnet18")
    with pytest.raises(ValueError, match=r"unexpected layer9_0/conv1/kernel \(7, 7, 3, 64\)"):
        convert_torchvision({**sd, "layer9.0.conv1.weight": sd["conv1.weight"]}, "resnet18")
    with pytest.raises(ValueError, match="missing layer1_0/bn1/mean"):
        convert_torchvision({k: v for k, v in sd.items() if k != "layer1.0.bn1.running_mean"}, "resnet18")
    with pytest.raises(ValueError, match="resnet50"):
        convert_torchvision(sd, "resnet50_keras")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_code_in_a_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"conv1.weight": _Evil(str(marker))}, protocol=2))
    (tmp_path / "evil.pth").write_bytes(buf.getvalue())
    with pytest.raises(pickle.UnpicklingError, match="not part of a plain state dict"):
        load_pth(tmp_path / "evil.pth")
    assert not marker.exists()
    (tmp_path / "legacy.pth").write_bytes(pickle.dumps(_Evil(str(marker)), protocol=2))
    with pytest.raises(ValueError, match="not a torch.save file"):
        load_pth(tmp_path / "legacy.pth")
    assert not marker.exists()
