"""Which damage to a checkpoint Orbax notices by itself, and which the checksum list catches.

    python benchmarks/checkpoint_damage.py [--big 1024] [--out table.md]

Saves one step of a small train state (a --big x --big float32 array of
random numbers, so that its stored bytes are mostly array data, plus a few
small arrays and an optimiser trace) with fluxseg's Checkpoints, then, on a
fresh copy per case, damages one item (variables, opt, meta) one way and
reads the whole step back with Orbax alone (no checksum check). Each row
says what Orbax did (raised, loaded the same arrays and meta, or loaded
something else without an error) and whether fluxseg's checksum list flags
the step.

Files: 'every file' = each file of the item (what a failing disk or an
interrupted copy does); 'largest' = the item's largest data file (array
bytes, not Orbax's index); the named ones are Orbax's index and metadata.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from fluxseg.train import checksums
from fluxseg.train.checkpoint import ITEMS, Checkpoints, abstract
from fluxseg.train.step import TrainState

MODES = ("random third (start)", "random third (middle)", "random third (end)", "zeros third (middle)",
         "truncated to 2/3", "emptied", "deleted", "one bit flipped (middle)")


def _state(n: int) -> TrainState:
    rng = np.random.default_rng(0)
    params = {"big": jnp.asarray(rng.standard_normal((n, n), np.float32)),
              "conv": {"kernel": jnp.asarray(rng.standard_normal((3, 3, 8, 16), np.float32)),
                       "bias": jnp.asarray(rng.standard_normal((16,), np.float32))}}
    trace = jax.tree_util.tree_map(lambda x: x * 0.5, params)
    return TrainState(step=jnp.int32(1), params=params, batch_stats={}, opt_state={"trace": trace},
                      rng=jax.random.PRNGKey(0))


def _damage(path: str, mode: str) -> None:
    if mode == "deleted":
        os.remove(path)
        return
    with open(path, "rb") as f:
        data = bytearray(f.read())
    n, k = len(data), max(len(data) // 3, 1)
    if mode == "truncated to 2/3":
        data = data[: 2 * n // 3]
    elif mode == "emptied":
        data = bytearray()
    elif mode == "one bit flipped (middle)":
        data[n // 2] ^= 0x08
    else:
        start = {"start": 0, "middle": n // 3, "end": n - k}[mode.split("(")[1].rstrip(")")]
        fill = (np.random.default_rng(n).integers(0, 256, k, np.uint8).tobytes() if mode.startswith("random")
                else bytes(k))
        data[start:start + k] = fill
    with open(path, "wb") as f:
        f.write(bytes(data))


def _targets(step_dir: str, item: str) -> dict[str, list[str]]:
    root = os.path.join(step_dir, item)
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f != "commit_success.txt")
    data = [p for p in files if os.path.basename(os.path.dirname(p)) == "d"]
    out = {"every file": files}
    if data:
        out["largest"] = [max(data, key=os.path.getsize)]
    for p in files:
        rel = os.path.relpath(p, root)
        if os.path.basename(os.path.dirname(p)) != "d":
            out[rel] = [p]
    return out


def _same(a, b) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--big", type=int, default=1024)
    p.add_argument("--out", default=None, help="also write the table to this Markdown file")
    args = p.parse_args()
    root = tempfile.mkdtemp(prefix="fluxseg-damage-")
    state = _state(args.big)
    source = os.path.join(root, "source")
    meta = {"step": 1, "config": {"learning_rate": 0.01, "model": "unet", "note": "x" * 2000}}
    ckpt = Checkpoints(source, keep_last=2, keep_best=0, best_metric="mIoU", best_mode="max", async_save=False)
    ckpt.save(state, meta)
    ckpt.close()
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = abstract(state, sharding)
    rows = []
    probe = os.path.join(root, "probe")
    for item in ITEMS:
        for files_name, _ in _targets(os.path.join(source, "checkpoints", "1"), item).items():
            for mode in MODES:
                shutil.rmtree(probe, ignore_errors=True)
                shutil.copytree(source, probe)
                step_dir = os.path.join(probe, "checkpoints", "1")
                for path in _targets(step_dir, item)[files_name]:
                    _damage(path, mode)
                flagged = bool(checksums.problems(step_dir, ITEMS))
                reader = Checkpoints.reader(probe)
                try:
                    same = _same(reader.restore_state(1, target), state) and reader.meta(1) == meta
                    orbax = "loads the same" if same else "**loads something else**"
                except Exception as e:  # noqa: BLE001  the error is the finding
                    inner = getattr(e, "error", e)
                    orbax = f"raises {type(inner).__name__}"
                finally:
                    reader.close()
                rows.append((item, files_name, mode, orbax, "yes" if flagged else "no"))
                print(" | ".join(rows[-1]), flush=True)
    shutil.rmtree(root, ignore_errors=True)
    table = ["| item | files | damage | Orbax alone | checksum list flags it |", "|---|---|---|---|---|"]
    table += [f"| {' | '.join(r)} |" for r in rows]
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(table) + "\n")
    silent = [r for r in rows if "else" in r[3]]
    print(f"\n{len(rows)} cases; Orbax loads something else without an error in {len(silent)}; "
          f"the checksum list misses {sum(r[4] == 'no' and r[3] != 'loads the same' for r in rows)} of the "
          f"cases Orbax does not load as saved")


if __name__ == "__main__":
    main()
