"""Shared by the fluxseg.viz tests (a module of its own: several test folders have a conftest)."""
from __future__ import annotations

import numpy as np

# The filter-ascent case shared with the Keras run: block3_conv1 of VGG16, 32x32 starts.
# Filter 0 is left out on purpose: at its start image some ReLU or max-pool
# decision lies within float32 rounding, so any two correct float32
# implementations may route its gradient differently (JAX float32 vs float64
# differ by 9% there). The test checks the chosen ones against float64.
FILTER_IDS = np.array([3, 5, 17], np.int32)
FILTER_SIZE = 32
FILTER_SEED = 3


def rel_err(got, ref) -> float:
    """max |got - ref| / max |ref|; fails if the reference is all zeros (nothing would be proven)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, f"shape {got.shape} vs reference {ref.shape}"
    scale = float(np.abs(ref).max())
    assert scale > 0, "the reference is all zeros; the comparison would prove nothing"
    return float(np.abs(got - ref).max()) / scale


def random_variables(model, x, seed: int = 0) -> dict:
    """He-scaled random variables for `model` on inputs like `x`, without running `model.init`.

    `init` executes the whole network op by op (or compiles it), which costs
    tens of seconds for a ResNet on a shared 2-core machine; the shapes alone
    are free (`jax.eval_shape`). Biases and BatchNorm parameters are random
    too, so no layer is an identity by accident.
    """
    import jax
    from flax import traverse_util

    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
    out = {}
    for path, s in traverse_util.flatten_dict(jax.tree.map(lambda a: a, shapes)).items():
        name = path[-1]
        if name == "kernel":
            v = rng.standard_normal(s.shape) * np.sqrt(2.0 / np.prod(s.shape[:-1]))
        elif name == "scale":
            v = rng.uniform(0.5, 1.0, s.shape)
        elif name == "var":
            v = rng.uniform(0.5, 1.5, s.shape)
        else:  # bias, BatchNorm mean
            v = 0.1 * rng.standard_normal(s.shape)
        out[path] = np.asarray(v, np.float32)
    return traverse_util.unflatten_dict(out)
