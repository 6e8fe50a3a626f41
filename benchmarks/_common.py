"""What the model benchmarks share: the cases, input sizes, timing and memory.

Each framework runs in its own process (TensorFlow and torch crash when
imported together here), so this module imports none of them; the workers
(`models_throughput_{jax,torch,keras}.py`) import only their own.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import resource
import statistics
import sys
import time
from typing import Callable

from fluxseg.runtime import cpu_process  # imports no framework

# A line on stdout that starts with this carries a worker's JSON result; the
# libraries print their own chatter, so the driver reads only these lines.
RESULT_PREFIX = "BENCH_JSON "
MODES = ("infer", "train")
# Same optimizer in every framework: plain SGD with momentum, as in the papers.
LR, MOMENTUM = 0.01, 0.9


@dataclasses.dataclass(frozen=True)
class Peer:
    framework: str  # 'jax' | 'torch' | 'keras': which worker process builds it
    impl: str       # which build inside that worker
    label: str      # what the table prints


FLUXSEG = Peer("jax", "fluxseg", "fluxseg (jax)")
# Per model: fluxseg first, then the peers it is compared with.
CASES: dict[str, tuple[Peer, ...]] = {
    "resnet50": (
        FLUXSEG,
        Peer("torch", "torchvision", "torchvision"),
        Peer("torch", "torchvision_cl", "torchvision channels_last"),
        Peer("torch", "torchvision_cl_compile", "torchvision channels_last, torch.compile"),
        Peer("keras", "keras_app", "keras.applications ResNet50 (v1)"),
    ),
    "resnet50_keras": (FLUXSEG, Peer("keras", "keras_app", "keras.applications")),
    "vgg16": (
        FLUXSEG,
        Peer("keras", "keras_app", "keras.applications"),
        Peer("torch", "torchvision", "torchvision"),
    ),
    "fcn_resnet18": (FLUXSEG, Peer("torch", "d2l_fcn", "d2l FCN (torch)")),
    "unet": (FLUXSEG, Peer("keras", "keras_unet", "U-Net (keras functional)")),
}
# Class counts as the registry's defaults, so every framework builds the same head.
NUM_CLASSES = {"resnet50": 1000, "resnet50_keras": 1000, "vgg16": 1000, "fcn_resnet18": 21, "unet": 2}
# torch.compile takes minutes on a CPU host; the driver runs these peers only with --torch-compile.
COMPILED = "_compile"
IN_CHANNELS = {"unet": 1}  # the original U-Net takes grey images
SEGMENTATION = {"fcn_resnet18", "unet"}


# Dense tensor-core peaks in TFLOP/s by device kind and dtype, from the vendor's
# datasheets (SXM parts). float32 convolutions and matmuls run as TF32 on these
# chips by default in XLA and in cuDNN (torch's allow_tf32 for cuDNN), so the
# float32 fraction is taken against the TF32 peak.
PEAK_TFLOPS = {
    "NVIDIA H200": {"float32": 494.7, "bfloat16": 989.4},
    "NVIDIA H100 80GB HBM3": {"float32": 494.7, "bfloat16": 989.4},
    "NVIDIA A100-SXM4-80GB": {"float32": 156.0, "bfloat16": 312.0},
}


def input_hw(model: str, hw: tuple[int, int]) -> tuple[int, int]:
    """The input size a model is run at for a requested size.

    The unpadded U-Net only accepts sides 16*b + 124 (188, 204, ...), so its
    sides are rounded up to the next valid one; every other model takes `hw`.
    """
    if model != "unet":
        return hw
    return tuple(max(n, 188) + (-(max(n, 188) - 124)) % 16 for n in hw)


def cpu_threads() -> int:
    """CPUs this process may run on (the affinity mask, not the host's count)."""
    return len(os.sched_getaffinity(0))


# ---------------------------------------------------------------- timing


def time_steps(step: Callable[[], None], reps: int, warmup: int, steps: int, memory) -> dict:
    """Times `reps` repetitions of `steps` calls of `step` (which must block
    until its work is done), after `warmup` untimed calls.

    Returns seconds per call: the first call on its own (it carries tracing,
    compilation or kernel selection), then each repetition; and the peak
    memory of the timed calls (`memory.start_phase()` runs after the
    warm-up, so one-off costs such as compilers and autotuners stay out where
    the framework lets us reset its peak).
    """
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        step()
    memory.start_phase()
    per_call = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        per_call.append((time.perf_counter() - t0) / steps)
    return {"first_call_s": first, "step_s": per_call, **memory.phase_peak_mib()}


def summarize(step_s: list[float], batch: int) -> dict:
    """Images per second: the median over repetitions, with min and max."""
    ips = [batch / s for s in step_s]
    return {"img_s_median": statistics.median(ips), "img_s_min": min(ips), "img_s_max": max(ips)}


# ---------------------------------------------------------------- memory (CPU)


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) * 1024


def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS mark (VmHWM) so a phase can measure its own peak.

    Linux only; where it is refused the peak is the process' lifetime peak
    (getrusage), which the result says through 'peak_rss_scope'.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) * 1024
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class CpuMemory:
    """Peak RSS of a phase above the RSS before the model was built.

    Counts weights, optimizer state, activations, and whatever the allocator
    kept of earlier work (the peak restarts from the current RSS, which still
    holds memory freed but not returned to the OS, e.g. by XLA's compiler),
    so it is an upper bound on what the model needs.
    """

    def __init__(self):
        self.baseline = rss_bytes()

    def start_phase(self):
        self.scope = "phase" if reset_peak_rss() else "process"

    def phase_peak_mib(self) -> dict:
        return {"peak_mib": (peak_rss_bytes() - self.baseline) / 2**20, "peak_scope": f"cpu rss, {self.scope}"}


# ---------------------------------------------------------------- worker I/O


def emit(result: dict):
    """Writes one result for the driver (stdout, one line)."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def parse_results(stdout: str) -> list[dict]:
    return [json.loads(line[len(RESULT_PREFIX):]) for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]


def allocator_env(env: dict, framework: str, peer_allocator: str = "default") -> dict:
    """A worker's environment with the right glibc malloc settings.

    The fluxseg (jax) worker runs under fluxseg's (`fluxseg/runtime/cpu_process.py`),
    as `launch.py` and the `fluxseg` command do. A peer runs as its users run
    it, without them, unless ``peer_allocator='fluxseg'``.
    """
    if framework == "jax" or peer_allocator == "fluxseg":
        return cpu_process.environ(env)
    env = dict(env)
    if env.get(cpu_process.TUNABLES_ENV) == cpu_process.tunables():
        del env[cpu_process.TUNABLES_ENV]  # inherited from `fluxseg bench`, which re-executes under them
    return env


def allocator_label(env: dict) -> str:
    value = env.get(cpu_process.TUNABLES_ENV)
    return "none" if value is None else ("fluxseg's" if value == cpu_process.tunables() else repr(value))
