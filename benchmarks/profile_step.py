"""Where the time of one compiled step goes: per-op timings from XLA's profiler.

    python benchmarks/profile_step.py --model resnet50 --batch 16 --size 224,224 --mode train
    python benchmarks/profile_step.py --model unet --batch 1 --size 572,572 --mode infer --top 15
    python benchmarks/profile_step.py --model unet --model-kwargs '{"features": 8, "padding": "same", "norm": "batch"}' \
        --batch 16 --size 64,64          # the default experiment's network
    FLUXSEG_FAST_FORMS=off python benchmarks/profile_step.py ...   # the plain lax forms

Runs the same step as `models_throughput.py` (SGD-momentum train step with
BatchNorm in training mode, or the inference pass), warms it up, traces
`--calls` calls one at a time with `jax.profiler`, and reads each trace back
(`jax.profiler.ProfileData`): each executed HLO op (a fusion, a library call,
a copy) with its time, summed over the threads that ran it. An op's time is
its median over the calls: one traced call alone let a thread preempted for a
scheduler tick show a 0.2 ms op as 5-10 ms. Prints how busy XLA's worker
threads were in attributed ops, the share of op time per kind of work, then
the most expensive ops with their HLO shape and the model layer they come
from. Op times are summed over threads, so they add up to more than the wall
time on a multi-core host.
"""
from __future__ import annotations

import argparse
import collections
import functools
import glob
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from typing import NamedTuple

from fluxseg.runtime import cpu_process

if __name__ == "__main__":
    cpu_process.reexec()  # glibc's malloc settings, as launch.py runs; before JAX loads

import _common as C


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50", help="any registered model")
    p.add_argument("--model-kwargs", default="{}", help='JSON overrides, e.g. \'{"features": 8, "padding": "same", "norm": "batch"}\'')
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", default="224,224")
    p.add_argument("--mode", choices=C.MODES, default="train")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--top", type=int, default=12, help="how many of the most expensive ops to list")
    p.add_argument("--calls", type=int, default=5, help="calls traced one by one; each op's median over them is shown")
    a = p.parse_args(argv)
    hw = tuple(int(s) for s in a.size.split(","))
    # The unpadded U-Net's valid sizes apply to the registry's default only (not padding='same').
    a.hw = C.input_hw(a.model, hw) if a.model_kwargs.strip() in ("", "{}") else hw
    return a


# What an op does, from its HLO text: the first matching rule names it.
KINDS = (
    ("convolution", r" convolution\("),
    ("matmul", r" dot\("),
    ("max pool", r"reduce-window|select-and-scatter"),
    ("layout copy", r"transpose|copy\("),
    ("reduction", r"reduce\("),
)


def kind_of(hlo_line: str) -> str:
    """'forward convolution', 'backward matmul', ...: what the op computes (its
    HLO without metadata) and, from its metadata, whether it is in the gradient."""
    body = re.sub(r'metadata=\{[^}]*\}', "", hlo_line)
    what = next((name for name, pattern in KINDS if re.search(pattern, body)), "elementwise / other")
    if what in ("conv weight gradient",):
        return what
    return ("backward " if "transpose(jvp(" in hlo_line else "forward ") + what


def hlo_index(hlo_text: str) -> dict[str, str]:
    """Instruction name -> its defining line, with fused computations inlined
    (a fusion's line gets its called computation's body appended, so a fusion
    around a convolution is recognised as one)."""
    bodies, current, lines = {}, None, {}
    for line in hlo_text.splitlines():
        m = re.match(r"^%?([\w.\-]+) .*\{$", line)
        if m and not line.startswith(" "):
            current = m.group(1)
            bodies[current] = []
            continue
        if current:
            bodies[current].append(line.strip())
        d = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = ", line)
        if d:
            lines[d.group(1)] = line.strip()
    for name, line in lines.items():
        called = re.search(r"calls=%?([\w.\-]+)", line)
        if called and called.group(1) in bodies:
            lines[name] = line + " || " + " ".join(bodies[called.group(1)])
    return lines


def layer_of(line: str) -> str:
    m = re.search(r'op_name="([^"]+)"', line)
    return m.group(1).replace("jit(step)/", "").replace("jit(apply)/", "")[:70] if m else ""


class _Call(NamedTuple):
    wall: float                      # seconds
    per_op: dict                     # HLO op name -> ms, summed over threads
    busy: dict                       # worker thread -> seconds inside attributed ops


def _trace_one(step, hlo: dict, jax) -> _Call:
    trace_dir = tempfile.mkdtemp(prefix="fluxseg_profile_")
    try:
        with jax.profiler.trace(trace_dir):
            t0 = time.perf_counter()
            step()
            wall = time.perf_counter() - t0
        data = jax.profiler.ProfileData.from_file(glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)[0])
    finally:
        shutil.rmtree(trace_dir, ignore_errors=True)
    per_op, busy = collections.Counter(), {}
    for plane in data.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_XLAEigen"):  # XLA's worker threads, not Python
                continue
            spans = []
            for ev in line.events:
                if ev.name in hlo:
                    per_op[ev.name] += ev.duration_ns / 1e6
                    spans.append((ev.start_ns, ev.start_ns + ev.duration_ns))
            busy[line.name] = _covered(spans) / 1e9
    return _Call(wall, dict(per_op), busy)


def _covered(spans) -> float:
    """Length of the union of [start, end) intervals (ops nest inside library calls)."""
    total, end = 0.0, None
    for a, b in sorted(spans):
        if end is None or a > end:
            total, end = total + (b - a), b
        elif b > end:
            total, end = total + (b - end), b
    return total


def main(argv=None) -> int:
    a = parse_args(argv)
    import jax
    import jax.numpy as jnp
    import optax

    from fluxseg import models
    from fluxseg.runtime.backend import compiler_options, jit
    import models_throughput_jax as MJ

    kwargs = json.loads(a.model_kwargs) | ({"dtype": jnp.bfloat16} if a.dtype == "bfloat16" else {})
    model = models.create(a.model, **kwargs)
    key = jax.random.key(0)
    x = jax.random.normal(key, (a.batch, *a.hw, C.IN_CHANNELS.get(a.model, 3)))
    variables = MJ._host_init(jax.eval_shape(functools.partial(model.init, train=False), key, x), jax)
    if a.mode == "infer":
        fn, args = jit(functools.partial(model.apply, train=False)), (variables, x)
    else:
        out = jax.eval_shape(functools.partial(model.apply, train=False), variables, x).shape
        fn, args = MJ._train_step(model, variables, x, jax.random.randint(key, out[:-1], 0, out[-1]), jax, optax, jit)
    compiled = fn.lower(*args).compile()
    step = MJ._stepper(compiled, args, a.mode, jax)
    for _ in range(2):
        step()
    hlo = hlo_index(compiled.as_text())
    calls = [_trace_one(step, hlo, jax) for _ in range(max(a.calls, 1))]
    wall = statistics.median(c.wall for c in calls)
    per_op = collections.Counter({name: statistics.median(c.per_op.get(name, 0.0) for c in calls)
                                  for name in set().union(*(c.per_op for c in calls))})
    threads = max(len(c.busy) for c in calls)
    total = sum(per_op.values())
    per_kind = collections.Counter()
    for name, ms in per_op.items():
        per_kind[kind_of(hlo[name])] += ms
    capacity = wall * 1e3 * max(threads, 1)
    print(f"{a.model} {a.mode} batch {a.batch} {a.hw[0]}x{a.hw[1]} {a.dtype} | wall {wall * 1e3:.0f} ms "
          f"(median of {len(calls)} traced calls) | op time {total:.0f} ms over {threads} threads | "
          f"XLA options {compiler_options() or 'none'}")
    busy = statistics.median(sum(c.busy.values()) / max(len(c.busy), 1) / c.wall for c in calls)
    print(f"{len(per_op)} distinct ops a call; each worker thread was inside an attributed op "
          f"{100 * busy:.0f}% of the wall time")
    # Library calls that return before their work is done (XLA's Eigen convolutions run
    # asynchronously in its pool) and idle threads are not in any op's time: say how much.
    print(f"not attributed to an op: {max(capacity - total, 0):.0f} ms of {capacity:.0f} "
          f"(wall x threads): asynchronous convolutions, waiting, idle threads")
    print("\n| kind of op | ms | share |\n|---|---|---|")
    for k, ms in per_kind.most_common():
        print(f"| {k} | {ms:.0f} | {100 * ms / total:.1f}% |")
    print("\n| op | kind | ms | shape | from |\n|---|---|---|---|---|")
    for name, ms in per_op.most_common(a.top):
        shape = re.search(r"= (\S+)", hlo[name]).group(1)[:40]
        print(f"| {name} | {kind_of(hlo[name])} | {ms:.1f} | {shape} | {layer_of(hlo[name])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
