"""Worker for `models_throughput.py --framework torch`: times the torch peers.

Runs in its own process; imports torch and torchvision only. Eager mode, as
most torch users run it, and `torch.compile` (default mode) for the impls
ending in `_compile`; the first call (with compiling) is reported as
`first_call_s` and excluded from img/s. `--dtype bfloat16` runs the forward
pass and the loss under `torch.autocast` (parameters stay float32).
"""
from __future__ import annotations

import _common as C


def build(impl: str, model: str, torch, torchvision):
    nn = torch.nn
    if impl.startswith("torchvision"):
        return getattr(torchvision.models, model)(weights=None, num_classes=C.NUM_CLASSES[model])
    if impl == "d2l_fcn":
        # d2l.ai §13.11: ResNet-18 without avgpool and fc, a 1x1 conv to the
        # classes, one ConvTranspose2d(k=64, s=32, p=16); the same graph as
        # fluxseg's fcn_resnet18 (variant='32s').
        n = C.NUM_CLASSES[model]
        net = nn.Sequential(*list(torchvision.models.resnet18(weights=None).children())[:-2])
        net.add_module("final_conv", nn.Conv2d(512, n, kernel_size=1))
        net.add_module("transpose_conv", nn.ConvTranspose2d(n, n, kernel_size=64, stride=32, padding=16))
        return net
    raise ValueError(f"no torch build {impl!r} for {model!r}")


def run(a) -> list[dict]:
    import torch
    import torchvision

    # Use every CPU this process may run on, as XLA's CPU client does by default.
    torch.set_num_threads(C.cpu_threads())
    gpu = a.device == "gpu"
    if gpu and not torch.cuda.is_available():
        raise RuntimeError("--device gpu asked for, but torch sees no CUDA device")
    dev = torch.device("cuda" if gpu else "cpu")
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    mem = _GpuMemory(torch) if gpu else C.CpuMemory()

    (h, w), c = a.hw, C.IN_CHANNELS.get(a.model, 3)
    g = torch.Generator().manual_seed(0)
    net = build(a.impl, a.model, torch, torchvision).to(dev)
    x = torch.randn(a.batch, c, h, w, generator=g).to(dev)
    if "_cl" in a.impl:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out_shape = net.eval()(x).shape  # N, classes, (H, W)
    if a.impl.endswith(C.COMPILED):
        net = torch.compile(net)
    autocast = lambda: torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.dtype == "bfloat16")  # noqa: E731
    y = torch.randint(0, out_shape[1], (out_shape[0], *out_shape[2:]), generator=g).to(dev)
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    info = {"params_m": sum(p.numel() for p in net.parameters()) / 1e6, "output_shape": list(out_shape), "torch": torch.__version__, "threads": torch.get_num_threads()}

    results = []
    for mode in a.modes:
        step = _infer(net, x, torch, sync, autocast) if mode == "infer" else _train(net, x, y, torch, sync, autocast)
        timing = C.time_steps(step, a.reps, a.warmup, a.steps, mem)
        results.append({"mode": mode, **timing, **info})
    return results


def _infer(net, x, torch, sync, autocast):
    net.eval()

    def step():
        with torch.inference_mode(), autocast():
            net(x)
        sync()

    return step


def _train(net, x, y, torch, sync, autocast):
    """Forward + backward + SGD-momentum update, BatchNorm in training mode."""
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=C.LR, momentum=C.MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(net(x).float(), y)
        loss.backward()
        opt.step()
        sync()

    return step


class _GpuMemory:
    """Peak bytes allocated by torch during a phase (weights included)."""

    def __init__(self, torch):
        self.torch = torch
        self.base = torch.cuda.memory_allocated()

    def start_phase(self):
        self.torch.cuda.reset_peak_memory_stats()

    def phase_peak_mib(self):
        peak = self.torch.cuda.max_memory_allocated()
        return {"peak_mib": (peak - self.base) / 2**20, "peak_scope": "torch max_memory_allocated, phase"}
