"""Finding weight files offline, downloading them on request, and the converted-file fast path.

Lookup order (the first hit wins), in each place the converted file
(`<model>_<source>[_notop].fluxseg.msgpack`, see `save_converted`) before the
original files under their official names:
  1. `path=`: a file (original or converted) or a directory to search;
  2. `$FLUXSEG_WEIGHTS_DIR`;
  3. the Keras cache, `$KERAS_HOME/models` (default `~/.keras/models`);
  4. the torch hub cache, `$TORCH_HOME/hub/checkpoints` (default
     `~/.cache/torch/hub/checkpoints`).
Nothing is fetched unless `allow_download=True`; then the file goes to
`$FLUXSEG_WEIGHTS_DIR` (or the source's own cache) and must match the hash
its library publishes before it is used.

Converted files are `flax.serialization` msgpack: one self-describing file,
no directory tree or async machinery (Orbax is for training checkpoints),
and restoring it is a single read.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Optional

from flax import serialization

from fluxseg.weights import preprocess as _preprocess
from fluxseg.weights import registry, tree
from fluxseg.weights.registry import WeightFile

CONVERTED_FORMAT = "fluxseg-weights/1"
CONVERTED_SUFFIX = ".fluxseg.msgpack"


@dataclasses.dataclass
class Pretrained:
    """Converted variables and the preprocessing they were trained with.

    variables: {'params', 'batch_stats'} of float32 numpy arrays, for
      `fluxseg.models.create(model_name, include_top=include_top)`.
    preprocess: the `fluxseg.weights.preprocess` name ('caffe' for Keras,
      'torch' for torchvision); `preprocess_fn` is the function itself.
    """

    variables: dict
    preprocess: str
    model_name: str
    source: str
    include_top: bool
    path: Path
    converted: bool  # read from a converted file (fast path)
    dropped: tuple[str, ...] = ()  # classifier leaves in the file that include_top=False removed

    @property
    def preprocess_fn(self):
        return _preprocess.get(self.preprocess)


def converted_name(model_name: str, source: str, include_top: bool = True) -> str:
    return f"{model_name}_{source}{'' if include_top else '_notop'}{CONVERTED_SUFFIX}"


def search_dirs() -> list[tuple[Path, str]]:
    """The standard places, in lookup order, with a label for messages."""
    dirs = []
    if os.environ.get("FLUXSEG_WEIGHTS_DIR"):
        dirs.append((Path(os.environ["FLUXSEG_WEIGHTS_DIR"]).expanduser(), "$FLUXSEG_WEIGHTS_DIR"))
    dirs.append((registry.keras_cache_dir(), "Keras cache"))
    dirs.append((registry.torch_cache_dir(), "torch hub cache"))
    return dirs


def file_names(model_name: str, source: str, include_top: bool = True, prefer_converted: bool = True) -> list[str]:
    """The file names that can give these weights, in preference order."""
    converted = [converted_name(model_name, source, include_top)]
    if not include_top:
        converted.append(converted_name(model_name, source, True))
    originals = [f.filename for f in registry.candidates(model_name, source, include_top)]
    return (converted if prefer_converted else []) + originals


def find(model_name: str, source: str, *, include_top: bool = True, path=None, prefer_converted: bool = True) -> Optional[Path]:
    """The first weight file found in the lookup order, or None."""
    names = file_names(model_name, source, include_top, prefer_converted)
    dirs = [d for d, _ in search_dirs()]
    if path is not None:
        path = Path(path).expanduser()
        if path.is_file():
            return path
        if not path.is_dir():
            raise FileNotFoundError(f"weights path {path} does not exist")
        dirs.insert(0, path)
    for d in dirs:
        for name in names:
            if (d / name).is_file():
                return d / name
    return None


def not_found_message(model_name: str, source: str, include_top: bool, path=None) -> str:
    files = registry.candidates(model_name, source, include_top)
    wf = files[0]
    places = ([f"  {Path(path).expanduser()}  (path=)"] if path is not None else []) + [
        f"  {d}  ({label})" for d, label in search_dirs()
    ]
    alts = "".join(f"\n  or {f.filename}  from {f.url}" for f in files[1:])
    default_env = "" if os.environ.get("FLUXSEG_WEIGHTS_DIR") else "\n  (or any directory named by $FLUXSEG_WEIGHTS_DIR)"
    hash_text = f"md5 {wf.hash}" if wf.hash_kind == "md5" else f"sha256 starting {wf.hash}"
    return (
        f"No {source} weights for {model_name} (include_top={include_top}) were found offline.\n"
        f"Needed: {wf.filename}\n  from {wf.url}  ({hash_text}){alts}\n"
        f"Put it in one of these directories (searched in this order):\n" + "\n".join(places) + default_env + "\n"
        f"or pass path=/path/to/{wf.filename}, or allow_download=True to fetch and hash-check it."
    )


def file_matches(path: Path, wf: WeightFile) -> bool:
    """True when the file's digest matches what the library publishes for it."""
    h = hashlib.md5() if wf.hash_kind == "md5" else hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    return digest == wf.hash if wf.hash_kind == "md5" else digest.startswith(wf.hash)


def _fetch(url: str, dest: Path) -> None:
    """Streams `url` to `dest` (tests replace this to stay offline)."""
    with urllib.request.urlopen(url) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)


def download(wf: WeightFile, source: str) -> Path:
    """Fetches an official file into $FLUXSEG_WEIGHTS_DIR (else the source's cache) and checks its hash."""
    env = os.environ.get("FLUXSEG_WEIGHTS_DIR")
    dest_dir = Path(env).expanduser() if env else registry.source(source).cache_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / wf.filename
    print(f"Downloading {wf.url} -> {dest}", file=sys.stderr)
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=wf.filename, suffix=".part")
    os.close(fd)
    try:
        _fetch(wf.url, Path(tmp))
        if not file_matches(Path(tmp), wf):
            raise OSError(
                f"downloaded {wf.url} does not match its published hash ({wf.hash_kind} {wf.hash}); "
                "the file was discarded. Retry, or fetch it by hand and check it."
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def strip_top(variables: dict, model_name: str) -> tuple[dict, tuple[str, ...]]:
    """Drops the classifier layers of a backbone's variables; returns (variables, dropped paths)."""
    top = registry.TOP_LAYERS[model_name]
    flat = tree.flatten(variables)
    dropped = tuple(sorted(p for _, p in flat if p.split("/")[0] in top))
    return tree.unflatten({k: v for k, v in flat.items() if k[1].split("/")[0] not in top}), dropped


def has_top(variables: dict, model_name: str) -> bool:
    return registry.TOP_LAYERS[model_name][-1] in variables.get("params", {})


def save_converted(pre: Pretrained, out_dir) -> Path:
    """Writes `pre` as `<out_dir>/<model>_<source>[_notop].fluxseg.msgpack`; returns the path."""
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / converted_name(pre.model_name, pre.source, pre.include_top)
    payload = {
        "format": CONVERTED_FORMAT,
        "model": pre.model_name,
        "source": pre.source,
        "include_top": pre.include_top,
        "preprocess": pre.preprocess,
        "origin": pre.path.name,
        "variables": pre.variables,
    }
    tmp = dest.with_suffix(".part")
    tmp.write_bytes(serialization.msgpack_serialize(payload))
    os.replace(tmp, dest)
    return dest


def read_converted(path: Path, model_name: str, source: str) -> Pretrained:
    payload = serialization.msgpack_restore(Path(path).read_bytes())
    if not isinstance(payload, dict) or payload.get("format") != CONVERTED_FORMAT:
        raise ValueError(f"{path} is not a fluxseg converted weight file ({CONVERTED_FORMAT})")
    if (payload["model"], payload["source"]) != (model_name, source):
        raise ValueError(f"{path} holds {payload['source']} weights for {payload['model']}, not {source} {model_name}")
    return Pretrained(
        payload["variables"], payload["preprocess"], model_name, source, bool(payload["include_top"]), Path(path), True
    )


def load(model_name: str, source: str, *, path=None, include_top: bool = True, allow_download: bool = False, prefer_converted: bool = True) -> Pretrained:
    """Finds, converts and returns ImageNet weights for a fluxseg backbone.

    model_name: 'vgg16' or 'resnet50_keras' (source 'keras'); 'vgg16',
      'resnet18', 'resnet34', 'resnet50', 'resnet101' (source 'torchvision').
    include_top=False returns the convolutional base only (Keras' notop file
      if present, else the full file with its classifier dropped).
    path: a weight file (original or converted) or a directory searched first.
    Raises FileNotFoundError naming the file, the directories and the URL
    when nothing is found and `allow_download` is False.
    """
    src = registry.source(source)
    file = find(model_name, source, include_top=include_top, path=path, prefer_converted=prefer_converted)
    if file is None:
        if not allow_download:
            raise FileNotFoundError(not_found_message(model_name, source, include_top, path))
        file = download(registry.candidates(model_name, source, include_top)[0], source)
    if file.name.endswith(CONVERTED_SUFFIX):
        pre = read_converted(file, model_name, source)
    else:
        variables = src.convert(file, model_name)
        pre = Pretrained(variables, src.preprocess, model_name, source, has_top(variables, model_name), file, False)
    if include_top and not pre.include_top:
        raise ValueError(f"{file} has no classifier; include_top=True needs {registry.candidates(model_name, source, True)[0].filename}")
    if not include_top and pre.include_top:
        variables, dropped = strip_top(pre.variables, model_name)
        pre = dataclasses.replace(pre, variables=variables, include_top=False, dropped=dropped)
    return pre
