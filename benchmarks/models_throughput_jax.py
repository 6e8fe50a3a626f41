"""Worker for `models_throughput.py --framework jax`: times a fluxseg model.

Runs in its own process; imports JAX and fluxseg only. Compilation is timed
on its own (`jit(...).lower(...).compile()`) and never counted in img/s.
"""
from __future__ import annotations

import functools
import time

import _common as C


def _gpu_memory(jax):
    """Peak device bytes above the bytes in use before the model was built.

    XLA's allocator keeps one peak for the process (no reset), so a phase's
    peak also covers what came before it (compilation, autotuning, inference);
    the training step uses the most, so its peak is close to its own.
    """
    dev = jax.devices()[0]
    base = dev.memory_stats()["bytes_in_use"]

    class Mem:
        def start_phase(self):
            pass

        def phase_peak_mib(self):
            peak = dev.memory_stats()["peak_bytes_in_use"]
            return {"peak_mib": (peak - base) / 2**20, "peak_scope": "jax peak_bytes_in_use, process"}

    return Mem()


def run(a) -> list[dict]:
    import jax
    import jax.numpy as jnp
    import optax

    from fluxseg import models
    from fluxseg.runtime.backend import jit

    try:
        backend = jax.default_backend()
    except (RuntimeError, AssertionError):  # JAX_PLATFORMS=cuda without a usable CUDA jaxlib
        backend = None
    if backend != a.device:
        raise RuntimeError(f"--device {a.device} asked for, but JAX runs on {backend!r}; on a GPU host install fluxseg[cuda]")
    mem = _gpu_memory(jax) if a.device == "gpu" else C.CpuMemory()

    (h, w), c = a.hw, C.IN_CHANNELS.get(a.model, 3)
    model = models.create(a.model, **({"dtype": jnp.bfloat16} if a.dtype == "bfloat16" else {}))
    key = jax.random.key(0)
    x = jax.random.normal(key, (a.batch, h, w, c), jnp.float32)
    variables = _host_init(jax.eval_shape(functools.partial(model.init, train=False), key, x), jax)
    out_shape = jax.eval_shape(functools.partial(model.apply, train=False), variables, x).shape
    y = jax.random.randint(key, out_shape[:-1], 0, out_shape[-1])
    n_params = sum(p.size for p in jax.tree_util.tree_leaves(variables["params"]))
    info = {"params_m": n_params / 1e6, "output_shape": list(out_shape), "jax": jax.__version__, "backend": jax.default_backend(),
            "device_kind": jax.devices()[0].device_kind}

    results = []
    for mode in a.modes:
        if mode == "infer":
            fn = jit(functools.partial(model.apply, train=False))
            args = (variables, x)
        else:
            fn, args = _train_step(model, variables, x, y, jax, optax, jit)
        t0 = time.perf_counter()
        lowered = fn.lower(*args)
        compiled = lowered.compile()
        compile_s = time.perf_counter() - t0
        flops = _flops(lowered)
        step = _stepper(compiled, args, mode, jax)
        timing = C.time_steps(step, a.reps, a.warmup, a.steps, mem)
        results.append({"mode": mode, "compile_s": compile_s, **timing, **info,
                        **({"flops_per_image": flops / a.batch} if flops else {})})
    return results


def _flops(lowered) -> float | None:
    """XLA's count of the floating-point operations of one call (None if it gives none).

    Counted on the lowered program, before XLA's backend passes: once compiled
    for a GPU, convolutions become cuDNN calls that the count leaves out.
    """
    try:
        cost = lowered.cost_analysis()
    except Exception:  # not every backend implements it
        return None
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float((cost or {}).get("flops", 0))
    return flops or None


def _host_init(shapes, jax):
    """Variables of the given shapes, drawn on the host with NumPy.

    XLA on CPU spends 15-25 s compiling ResNet-50's random initialisers,
    longer than the benchmark itself; the values do not change the program
    that is timed. He-scaled kernels, unit BatchNorm scales and variances and
    zero biases and means keep activations finite and away from denormals,
    which would slow the CPU.
    """
    import numpy as np

    rng = np.random.default_rng(0)

    def leaf(path, s):
        name = str(getattr(path[-1], "key", path[-1]))
        if name == "kernel":
            fan_in = int(np.prod(s.shape[:-1]))
            return (rng.standard_normal(s.shape) * np.sqrt(2.0 / fan_in)).astype(s.dtype)
        return (np.ones if name in ("scale", "var") else np.zeros)(s.shape, s.dtype)

    return jax.device_put(jax.tree_util.tree_map_with_path(leaf, shapes))


def _train_step(model, variables, x, y, jax, optax, jit):
    """Forward + backward + SGD-momentum update, BatchNorm in training mode.

    The same work as the torch and Keras peers: mean softmax cross-entropy over
    every output position, no metrics, no preprocessing. The state is donated
    where fluxseg's own steps donate it: on GPU/TPU, where its buffers are then
    updated in place as in the peers, and not on CPU, where donating made the
    step slower (fluxseg.runtime.backend.donate_argnums).
    """
    tx = optax.sgd(C.LR, momentum=C.MOMENTUM)
    params, stats = variables["params"], {k: v for k, v in variables.items() if k != "params"}
    state = (params, stats, tx.init(params), jax.random.key(1))

    def step(state, x, y):
        params, stats, opt_state, rng = state
        rng, dropout = jax.random.split(rng)

        def loss_fn(p):
            logits, new_stats = model.apply(
                {"params": p, **stats}, x, train=True, mutable=list(stats), rngs={"dropout": dropout}
            )
            logits = logits.astype(jax.numpy.float32)  # the loss in float32 under bfloat16 compute, as autocast does
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), new_stats

        (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), dict(new_stats), opt_state, rng), loss

    from fluxseg.runtime.backend import donate_argnums
    return jit(step, donate_argnums=donate_argnums(0)), (state, x, y)


def _stepper(compiled, args, mode, jax):
    if mode == "infer":
        return lambda: compiled(*args).block_until_ready()
    box = [args[0]]  # the donated state, replaced by each step's output

    def step():
        box[0], loss = compiled(box[0], *args[1:])
        jax.block_until_ready((box[0], loss))

    return step
