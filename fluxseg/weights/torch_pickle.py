"""Reads a PyTorch `.pth` state dict into numpy arrays without importing torch.

Why not `torch.load`: importing torch next to TensorFlow crashes in this
environment, and a JAX user should not need torch installed to use
torchvision's ImageNet weights. A state dict is a pickle whose tensors point
at raw storages, so a restricted unpickler plus numpy is enough.

Two layouts exist:
- zip (torch >= 1.6, every torchvision file since 2021): `<root>/data.pkl`
  holds the pickle, `<root>/data/<key>` the raw bytes of each storage,
  `<root>/byteorder` says 'little' or 'big'.
- legacy (older files such as `vgg16-397923af.pth`): a sequence of pickles —
  magic number, protocol version, system info, the object, the list of
  storage keys — then, per key, an int64 element count and the raw bytes.
The tar layout of torch < 0.4 is not supported (the error says how to re-save).

Only the globals a state dict needs are allowed; anything else (arbitrary
classes, functions) raises, so loading an untrusted file cannot run code.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

# torch storage class name -> numpy dtype (without byte order).
_STORAGE_DTYPES = {
    "FloatStorage": "f4",
    "DoubleStorage": "f8",
    "HalfStorage": "f2",
    "BFloat16Storage": "bf16",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "UntypedStorage": "u1",
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class _StorageType:
    """Stands in for `torch.FloatStorage` & co. inside the pickle."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    """A storage whose bytes are attached once they have been read."""

    def __init__(self, dtype: str, numel: int):
        self.dtype = dtype
        self.numel = numel
        self.array: np.ndarray | None = None


class _LazyTensor:
    """`_rebuild_tensor_v2` arguments; materialised after all storages are read."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialize(self) -> np.ndarray:
        base = self.storage.array
        if self.size == ():
            return np.array(base[self.offset])
        itemsize = base.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[self.offset :], shape=self.size, strides=[s * itemsize for s in self.stride], writeable=False
        )
        return np.array(view, order="C")  # the one copy: contiguous, writable, independent of the file buffer


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, load_storage):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"{module}.{name} is not part of a plain state dict; refusing to unpickle it "
                "(re-save with torch.save(model.state_dict(), path))"
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        return self._load_storage(pid)


def _dtype(type_: _StorageType, byteorder: str) -> np.dtype:
    code = type_.dtype
    if code == "bf16":
        import ml_dtypes  # ships with jax; numpy itself has no bfloat16

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(code if code in ("u1", "i1", "?") else ("<" if byteorder == "little" else ">") + code)


def _load_zip(zf: zipfile.ZipFile) -> Any:
    names = zf.namelist()
    pkl = next((n for n in names if n.endswith("data.pkl") and n.count("/") == 1), None)
    if pkl is None:
        raise ValueError("zip file has no '<root>/data.pkl'; not a torch.save file")
    root = pkl.rsplit("/", 1)[0]
    byteorder = zf.read(f"{root}/byteorder").decode() if f"{root}/byteorder" in names else "little"
    storages: dict[str, _Storage] = {}

    def load_storage(pid):
        _, type_, key, _location, numel = pid[:5]
        if key not in storages:
            dtype = _dtype(type_, byteorder)
            st = _Storage(dtype, numel)
            array = np.frombuffer(zf.read(f"{root}/data/{key}"), dtype=dtype)  # read-only, no copy
            st.array = array if dtype.isnative else array.astype(dtype.newbyteorder("="))
            storages[key] = st
        return storages[key]

    return _Unpickler(io.BytesIO(zf.read(pkl)), load_storage).load()


def _load_legacy(f: BinaryIO) -> Any:
    def plain_load():
        return _Unpickler(f, lambda pid: (_ for _ in ()).throw(pickle.UnpicklingError("storage outside the object"))).load()

    try:
        magic = plain_load()
    except Exception as e:
        raise ValueError(
            f"not a torch.save file (zip or legacy pickle): {e}. Files from torch < 0.4 (tar) are not "
            "supported; re-save with torch.save(torch.load(path), path)."
        ) from None
    if magic != _LEGACY_MAGIC:
        raise ValueError("not a torch.save file: bad magic number")
    if plain_load() != _LEGACY_PROTOCOL:
        raise ValueError("unsupported legacy torch protocol version")
    plain_load()  # system info (byte order, type sizes): torch only ever wrote little endian here
    storages: dict[str, _Storage] = {}

    def load_storage(pid):
        _, type_, key, _location, numel, view = pid
        if view is not None:
            raise ValueError("storage views (torch < 0.4) are not supported; re-save the file with a recent torch")
        if key not in storages:
            storages[key] = _Storage(_dtype(type_, "little"), numel)
        return storages[key]

    obj = _Unpickler(f, load_storage).load()
    keys = plain_load()
    for key in keys:
        st = storages[key]
        (numel,) = struct.unpack("<q", f.read(8))
        data = f.read(numel * st.dtype.itemsize)
        st.array = np.frombuffer(data, dtype=st.dtype)
    return obj


def _materialize(obj):
    if isinstance(obj, _LazyTensor):
        return obj.materialize()
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _materialize(v)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def load_pth(path: str | Path) -> Any:
    """Loads a `torch.save` file (a state dict, or a dict holding one) with numpy arrays for tensors."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            obj = _load_zip(zf)
    else:
        with open(path, "rb") as f:
            obj = _load_legacy(f)
    return _materialize(obj)
