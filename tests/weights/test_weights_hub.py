"""Finding weight files offline, the not-found message, hash-checked downloads, and the converted fast path.

HOME and the cache variables point into tmp_path; nothing touches the network
(`hub._fetch` is replaced where a download is exercised).
"""
import hashlib
import os
import shutil

import numpy as np
import pytest

from fluxseg.cli import weights as cli
from fluxseg.weights import hub, load, preprocess, registry, tree
from fluxseg.weights.registry import WeightFile


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty HOME with no weight-related environment; returns it."""
    for var in ("FLUXSEG_WEIGHTS_DIR", "KERAS_HOME", "TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))

    def no_network(url, dest):
        raise AssertionError(f"tried to download {url}")

    monkeypatch.setattr(hub, "_fetch", no_network)
    return home


def place(directory, name, target=None):
    directory.mkdir(parents=True, exist_ok=True)
    if target is None:
        (directory / name).write_bytes(b"")
    else:
        os.symlink(target, directory / name)
    return directory / name


def test_lookup_order(home, tmp_path, monkeypatch):
    name = "resnet18-f37072fd.pth"
    keras_cache, torch_cache, env = home / ".keras/models", home / ".cache/torch/hub/checkpoints", tmp_path / "env"
    explicit = tmp_path / "explicit"
    for d in (keras_cache, torch_cache, env, explicit):
        place(d, name)
    monkeypatch.setenv("FLUXSEG_WEIGHTS_DIR", str(env))
    assert hub.find("resnet18", "torchvision", path=explicit) == explicit / name
    assert hub.find("resnet18", "torchvision") == env / name
    monkeypatch.delenv("FLUXSEG_WEIGHTS_DIR")
    assert hub.find("resnet18", "torchvision") == keras_cache / name
    (keras_cache / name).unlink()
    assert hub.find("resnet18", "torchvision") == torch_cache / name
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))  # torch's own override of its cache
    assert hub.find("resnet18", "torchvision") is None


def test_converted_file_wins_within_a_directory_and_notop_prefers_notop_file(home):
    d = home / ".keras/models"
    top = place(d, "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
    assert hub.find("vgg16", "keras", include_top=False) == top  # a file with top serves notop too
    notop = place(d, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert hub.find("vgg16", "keras", include_top=False) == notop
    converted = place(d, "vgg16_keras.fluxseg.msgpack")
    assert hub.find("vgg16", "keras", include_top=False) == converted
    assert hub.find("vgg16", "keras", include_top=False, prefer_converted=False) == notop


def test_not_found_message_says_what_where_and_url(home):
    with pytest.raises(FileNotFoundError) as err:
        load("resnet18", "torchvision")
    msg = str(err.value)
    for needle in (
        "resnet18-f37072fd.pth",
        "https://download.pytorch.org/models/resnet18-f37072fd.pth",
        str(home / ".keras/models"),
        str(home / ".cache/torch/hub/checkpoints"),
        "FLUXSEG_WEIGHTS_DIR",
        "allow_download=True",
    ):
        assert needle in msg, (needle, msg)
    with pytest.raises(FileNotFoundError, match=r"vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5[\s\S]*keras-applications/vgg16/[\s\S]*md5 6d6bbae143d832006294945121d1f1fc"):
        load("vgg16", "keras", include_top=False)


def test_model_and_source_must_agree():
    with pytest.raises(ValueError, match="resnet50_keras"):
        load("resnet50", "keras")
    with pytest.raises(ValueError, match="unknown weight source"):
        load("resnet18", "caffe")


def test_urls_and_hashes_are_the_libraries_own():
    """The catalogue matches what keras/torchvision publish (read from their sources as text, no import)."""
    import importlib.util
    from pathlib import Path

    import _reference

    if not _reference.installed("keras", "torchvision"):
        _reference.missing("keras and torchvision")
    k, t = importlib.util.find_spec("keras"), importlib.util.find_spec("torchvision")
    kdir = Path(k.origin).parent / "src" / "applications"
    tdir = Path(t.origin).parent / "models"
    ksrc = (kdir / "vgg16.py").read_text() + (kdir / "resnet.py").read_text()
    tsrc = (tdir / "resnet.py").read_text() + (tdir / "vgg.py").read_text()
    for (source, _), files in registry.FILES.items():
        for wf in files:
            if source == "keras":
                assert wf.hash in ksrc and wf.url.startswith("https://storage.googleapis.com/tensorflow/keras-applications/")
            else:
                assert f'url="{wf.url}"' in tsrc


def test_load_finds_and_converts_with_its_preprocessing(home, torch_ref, keras_ref):
    place(home / ".cache/torch/hub/checkpoints", "resnet18-f37072fd.pth", torch_ref.file("resnet18-f37072fd.pth"))
    pre = load("resnet18", "torchvision")
    assert pre.preprocess == "torch" and pre.preprocess_fn is preprocess.torch and not pre.converted
    assert pre.include_top and "fc" in pre.variables["params"]
    assert "fc" not in load("resnet18", "torchvision", include_top=False).variables["params"]
    place(home / ".keras/models", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", keras_ref.file("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"))
    pre = load("resnet50_keras", "keras", include_top=False)
    assert pre.preprocess == "caffe" and pre.preprocess_fn is preprocess.caffe
    with pytest.raises(FileNotFoundError, match="resnet50_weights_tf_dim_ordering_tf_kernels.h5"):
        load("resnet50_keras", "keras")  # with top: the notop file cannot serve


def _sha_prefix(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def test_download_only_when_allowed_and_hash_checked(home, tmp_path, torch_ref, monkeypatch):
    real = torch_ref.file("resnet18-f37072fd.pth")
    monkeypatch.setenv("FLUXSEG_WEIGHTS_DIR", str(tmp_path / "w"))
    fetched = []

    def fake_fetch(url, dest):
        fetched.append(url)
        shutil.copy(real, dest)

    monkeypatch.setattr(hub, "_fetch", fake_fetch)
    good = WeightFile("resnet18-f37072fd.pth", "https://download.pytorch.org/models/resnet18-f37072fd.pth", _sha_prefix(real), "sha256-prefix", True)
    monkeypatch.setitem(registry.FILES, ("torchvision", "resnet18"), (good,))
    with pytest.raises(FileNotFoundError):
        load("resnet18", "torchvision")
    assert fetched == []
    bad = WeightFile(good.filename, good.url, "00000000", "sha256-prefix", True)
    monkeypatch.setitem(registry.FILES, ("torchvision", "resnet18"), (bad,))
    with pytest.raises(OSError, match="does not match its published hash"):
        load("resnet18", "torchvision", allow_download=True)
    assert list((tmp_path / "w").iterdir()) == []  # nothing half-trusted left behind
    monkeypatch.setitem(registry.FILES, ("torchvision", "resnet18"), (good,))
    pre = load("resnet18", "torchvision", allow_download=True)
    assert pre.path == tmp_path / "w" / "resnet18-f37072fd.pth" and fetched == [good.url] * 2


def test_keras_md5_check(tmp_path):
    f = tmp_path / "x.h5"
    f.write_bytes(b"weights")
    md5 = hashlib.md5(b"weights").hexdigest()
    assert hub.file_matches(f, WeightFile("x.h5", "u", md5, "md5", True))
    assert not hub.file_matches(f, WeightFile("x.h5", "u", "0" * 32, "md5", True))


def test_cli_convert_then_fast_load(home, tmp_path, torch_ref, keras_ref, monkeypatch, capsys):
    out = tmp_path / "converted"
    src = torch_ref.file("resnet18-f37072fd.pth")
    assert cli.main(["convert", "--model", "resnet18", "--source", "torchvision", "--path", str(src), "--out", str(out)]) == 0
    assert (out / "resnet18_torchvision.fluxseg.msgpack").is_file()
    monkeypatch.setenv("FLUXSEG_WEIGHTS_DIR", str(out))
    pre = load("resnet18", "torchvision")
    assert pre.converted and pre.preprocess == "torch" and pre.path.name == "resnet18_torchvision.fluxseg.msgpack"
    direct = tree.flatten(load("resnet18", "torchvision", path=src).variables)
    fast = tree.flatten(pre.variables)
    assert direct.keys() == fast.keys() and all(np.array_equal(direct[k], fast[k]) for k in direct)
    # notop Keras file through the CLI; a missing file is a clean error, not a traceback
    keras_src = keras_ref.file("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert cli.main(["convert", "--model", "resnet50_keras", "--source", "keras", "--notop", "--path", str(keras_src), "--out", str(out)]) == 0
    pre = load("resnet50_keras", "keras", include_top=False)
    assert pre.converted and pre.preprocess == "caffe" and not pre.include_top
    assert cli.main(["convert", "--model", "vgg16", "--source", "keras", "--out", str(out)]) == 1
    assert "vgg16_weights_tf_dim_ordering_tf_kernels.h5" in capsys.readouterr().err
