"""Inference and training throughput of fluxseg models next to Keras and torch.

    python benchmarks/models_throughput.py --models resnet50,vgg16 --batch 4 --size 224,224 --reps 10
    python benchmarks/models_throughput.py --device gpu --batch 64 --steps 10 --json gpu.json

The driver launches one worker process per (model, implementation), one at a
time so they never compete for cores: TensorFlow and torch crash when
imported into one process, and a fresh process per model lets each phase's
peak memory be its own. A worker is this script with `--framework
jax|torch|keras --impl NAME`; it prints its results as JSON lines on stdout.
The driver prints one markdown table: median images/s over `--reps`
repetitions (min-max beside it) and fluxseg's median divided by the peer's
(> 1: fluxseg is faster). Warm-up calls are never timed; JAX's compile time
and every framework's first call are reported on their own.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
import time

import _common as C

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(C.CASES), help=f"comma-separated, from: {', '.join(C.CASES)}")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", default="224,224", help="H,W of the input (the unpadded U-Net rounds up to a valid size)")
    p.add_argument("--reps", type=int, default=10, help="timed repetitions; the median is reported")
    p.add_argument("--steps", type=int, default=1, help="steps per repetition (raise on GPU so a repetition is >> 1 ms)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls before the repetitions (>= 1)")
    p.add_argument("--modes", default="infer,train", help="infer, train or both")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                   help="compute dtype: fluxseg dtype=, torch autocast, Keras mixed_bfloat16 (parameters stay float32)")
    p.add_argument("--keras-backend", choices=("tensorflow", "jax"),
                   help="Keras' backend (default: tensorflow on cpu, jax on gpu, where TensorFlow is rarely installed with CUDA)")
    p.add_argument("--torch-compile", action="store_true", help="also run the torch.compile peers (minutes of compiling)")
    p.add_argument("--frameworks", default="jax,torch,keras", help="which workers to run (jax is fluxseg)")
    p.add_argument("--impls", help="only these builds, comma-separated (e.g. fluxseg,torchvision_cl); default: every peer of the case")
    p.add_argument("--omp-wait-policy", default="PASSIVE",
                   help="OMP_WAIT_POLICY for the workers (torch's OpenMP pool); '' keeps the library default")
    p.add_argument("--peer-allocator", choices=("default", "fluxseg"), default="default",
                   help="glibc malloc settings of the torch and Keras workers: 'default' as the environment gives them "
                        "(without fluxseg's GLIBC_TUNABLES, as their users run them), 'fluxseg' the same as the fluxseg "
                        "worker's (fluxseg/runtime/cpu_process.py)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per worker before it is killed")
    p.add_argument("--json", help="write every result (all repetitions) to this file")
    # Worker mode, used by the driver.
    p.add_argument("--framework", choices=("jax", "torch", "keras"), help=argparse.SUPPRESS)
    p.add_argument("--impl", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.hw = tuple(int(s) for s in a.size.split(","))
    asked = [m for m in a.modes.split(",") if m]
    # Inference always runs first: on GPU/TPU the JAX training step donates (and so
    # deletes) the parameter buffers it shares with the inference variables.
    a.modes = [m for m in C.MODES if m in asked]
    if len(a.hw) != 2 or set(asked) - set(C.MODES) or not asked or a.warmup < 1:
        p.error("--size is H,W; --modes takes infer and/or train; --warmup must be >= 1")
    unknown = set(a.models.split(",")) - set(C.CASES)
    if unknown:
        p.error(f"no benchmark case for {sorted(unknown)}; cases: {', '.join(C.CASES)}")
    return a


# ---------------------------------------------------------------- worker


def worker(a) -> int:
    """Runs one (model, impl) in this process and prints its results."""
    a.model = a.models
    a.hw = C.input_hw(a.model, a.hw)
    common = {"model": a.model, "framework": a.framework, "impl": a.impl, "batch": a.batch, "size": list(a.hw), "device": a.device, "dtype": a.dtype}
    try:
        module = importlib.import_module(f"models_throughput_{a.framework}")
        for r in module.run(a):
            C.emit({**common, **r, **C.summarize(r["step_s"], a.batch)})
    except Exception as e:  # reported in the table; the driver goes on with the next case
        C.emit({**common, "error": f"{type(e).__name__}: {e}"})
        return 1
    return 0


# ---------------------------------------------------------------- driver


def worker_env(device: str, omp_wait_policy: str, keras_backend: str | None = None,
               framework: str = "jax", peer_allocator: str = "default") -> dict:
    env = dict(os.environ)
    env["KERAS_BACKEND"] = keras_backend or ("jax" if device == "gpu" else "tensorflow")
    if omp_wait_policy:
        # Spinning OpenMP threads stall when another process holds a core: on
        # 2 shared cores torch's ResNet-50 ran 3-10x slower with the default
        # policy than with PASSIVE (or with 1 thread). XLA and TF use Eigen
        # pools and are not affected. On a dedicated host '' may be faster.
        env["OMP_WAIT_POLICY"] = omp_wait_policy
    env["JAX_PLATFORMS"] = "cpu" if device == "cpu" else "cuda"
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # the peak then reflects the model, not a preallocated pool
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # keep torch and TF off any GPU the host has
    return C.allocator_env(env, framework, peer_allocator)


def run_case(a, model: str, peer: C.Peer) -> list[dict]:
    cmd = [sys.executable, os.path.join(HERE, "models_throughput.py"), "--framework", peer.framework, "--impl", peer.impl,
           "--models", model, "--batch", str(a.batch), "--size", a.size, "--reps", str(a.reps), "--steps", str(a.steps),
           "--warmup", str(a.warmup), "--modes", ",".join(a.modes), "--device", a.device, "--dtype", a.dtype]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout,
                              env=worker_env(a.device, a.omp_wait_policy, a.keras_backend, peer.framework, a.peer_allocator))
        results = C.parse_results(proc.stdout)
        if not results:
            tail = proc.stderr.strip().splitlines()[-3:]
            results = [{"error": f"worker exited {proc.returncode} without results: {' | '.join(tail)}"}]
    except subprocess.TimeoutExpired:
        results = [{"error": f"worker killed after --timeout {a.timeout:.0f} s"}]
    print(f"  {model:15s} {peer.label:28s} {time.perf_counter() - t0:6.1f} s", file=sys.stderr)
    return [{"model": model, "label": peer.label, "framework": peer.framework, "impl": peer.impl, **r} for r in results]


def ratios(results: list[dict]):
    """Adds 'ratio' = fluxseg median img/s / this row's median img/s, and the
    model FLOP/s of every row: fluxseg's FLOPs per image (XLA's count of its
    lowered step) times the row's img/s, and their fraction of the chip's peak."""
    ours = {(r["model"], r["mode"]): r for r in results if r["impl"] == "fluxseg" and "error" not in r}
    for r in results:
        if "error" in r or (r["model"], r["mode"]) not in ours:
            continue
        mine = ours[(r["model"], r["mode"])]
        r["ratio"] = mine["img_s_median"] / r["img_s_median"]
        if mine.get("flops_per_image"):
            r["tflops"] = mine["flops_per_image"] * r["img_s_median"] / 1e12
            peak = C.PEAK_TFLOPS.get(mine.get("device_kind", ""), {}).get(r.get("dtype", "float32"))
            if peak:
                r["peak_frac"] = r["tflops"] / peak


def table(results: list[dict]) -> str:
    head = ["model", "mode", "batch", "size", "dtype", "framework", "img/s median", "min-max", "fluxseg/peer", "ms/step",
            "TFLOP/s", "of peak", "params M", "peak MiB", "compile s", "1st call s"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for r in results:
        size = "x".join(map(str, r.get("size", []))) or "-"
        if "error" in r:
            cells = [r["model"], r.get("mode", "-"), str(r.get("batch", "-")), size, r.get("dtype", "-"), r["label"], "error: " + r["error"][:120]]
            rows.append("| " + " | ".join(cells + [""] * (len(head) - len(cells))) + " |")
            continue
        label = r["label"] + (" (XLA)" if r.get("jit_compile") else "") + (" [jax backend]" if r.get("backend") == "jax" else "")
        for n in r.get("notes", []):
            if n not in notes:
                notes.append(n)
        rows.append("| " + " | ".join([
            r["model"], r["mode"], str(r["batch"]), size, r.get("dtype", "float32"), label,
            f"{r['img_s_median']:.2f}", f"{r['img_s_min']:.2f}-{r['img_s_max']:.2f}",
            "-" if r["impl"] == "fluxseg" else f"{r.get('ratio', float('nan')):.2f}",
            f"{1e3 * r['batch'] / r['img_s_median']:.1f}",
            f"{r['tflops']:.1f}" if "tflops" in r else "-", f"{100 * r['peak_frac']:.0f}%" if "peak_frac" in r else "-",
            f"{r['params_m']:.2f}", f"{r['peak_mib']:.0f}", f"{r['compile_s']:.1f}" if "compile_s" in r else "-", f"{r['first_call_s']:.2f}",
        ]) + " |")
    return "\n".join(rows + [f"\nNote: {n}." for n in notes])


def header(a) -> str:
    return (f"{datetime.date.today()} | device {a.device} | {platform.node()} {platform.machine()}, "
            f"{C.cpu_threads()} CPUs usable | {a.dtype} | batch {a.batch}, size {a.size}, reps {a.reps} x {a.steps} step(s), "
            f"warm-up {a.warmup} | threads: torch/TF intra-op = {C.cpu_threads()}, XLA CPU = its own pool (one per core), "
            f"OMP_WAIT_POLICY={a.omp_wait_policy or 'library default'} | GLIBC_TUNABLES: "
            f"fluxseg {_tunables(a, 'jax')}, peers {_tunables(a, 'torch')}")


def _tunables(a, framework: str) -> str:
    return C.allocator_label(worker_env(a.device, a.omp_wait_policy, a.keras_backend, framework, a.peer_allocator))


def driver(a) -> int:
    results = []
    frameworks = set(a.frameworks.split(","))
    print(f"running {a.models} on {a.device} (each line is one worker process):", file=sys.stderr)
    for model in a.models.split(","):
        for peer in C.CASES[model]:
            wanted = peer.impl in a.impls.split(",") if a.impls else (a.torch_compile or not peer.impl.endswith(C.COMPILED))
            if peer.framework in frameworks and wanted:
                results += run_case(a, model, peer)
    order = {m: i for i, m in enumerate(C.MODES)}
    results.sort(key=lambda r: (a.models.split(",").index(r["model"]), order.get(r.get("mode"), -1)))
    ratios(results)
    print(header(a) + "\n\n" + table(results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"settings": {k: v for k, v in vars(a).items() if k not in ("framework", "impl")}, "results": results}, f, indent=1)
    return 1 if any("error" in r for r in results) else 0


def main(argv=None) -> int:
    a = parse_args(argv)
    return worker(a) if a.framework else driver(a)


if __name__ == "__main__":
    sys.exit(main())
