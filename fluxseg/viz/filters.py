"""What a filter responds to: gradient ascent in input space (Chollet, DLwP 1st ed. §5.4.2).

Two methods:
  'dlwp'        the book's recipe exactly: start from grey noise
                `uniform * 20 + 128`, loss = mean activation of the filter,
                step along the gradient divided by its RMS + 1e-5, 40 steps
                of size 1, then `deprocess` (centre, /std, *0.1 + 0.5, clip).
  'regularized' what makes deep layers readable (Olah, Mordvintsev & Schubert
                2017, "Feature Visualization", Distill): a Fourier,
                colour-decorrelated image parameterisation and random
                jitter/scale/rotation at every step (`fluxseg.viz.transforms`),
                optimised with Adam (learning rate 0.05 * step_size).
All N filters ascend together as one batch (image i maximises filter i), in
one compiled loop; each start is keyed by (seed, filter index), so a
filter's result does not depend on which other filters share its batch.
"""
from __future__ import annotations

import warnings
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from fluxseg.runtime import backend
from fluxseg.viz import transforms
from fluxseg.viz._cache import cached

METHODS = ("dlwp", "regularized")


class FilterPatterns(NamedTuple):
    """images: uint8 [N, size, size, 3]; losses: float32 [N, steps], the loss before each step;
    no_gradient: bool [N], the loss's gradient w.r.t. the image was exactly zero at every step."""

    images: np.ndarray
    losses: np.ndarray
    no_gradient: Optional[np.ndarray] = None

    @property
    def dead(self) -> np.ndarray:
        """bool [N]: filters whose mean activation never rose above 0 during the ascent, or
        whose gradient was exactly zero throughout.

        Behind a ReLU such a filter has zero gradient everywhere, so its image
        is only the starting noise; draw it crossed out
        (`fluxseg.viz.tile_grid(crossed=...)`), never as a pattern.
        """
        dead = ~(self.losses.max(axis=1) > 0)
        return dead if self.no_gradient is None else dead | self.no_gradient


def _acts_fn(model, layer: str, preprocess: Optional[Callable]):
    key = tuple(layer.split("/"))

    def acts(variables, x):
        x = preprocess(x) if preprocess is not None else x
        _, state = model.apply(variables, x, train=False, mutable=["intermediates"])
        return traverse_util.flatten_dict(state["intermediates"])[key]

    return acts


def _tap_shapes(model, variables, size: int) -> dict:
    x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    _, state = jax.eval_shape(lambda v, x: model.apply(v, x, train=False, mutable=["intermediates"]), variables, x)
    return {"/".join(k): v.shape for k, v in traverse_util.flatten_dict(state["intermediates"]).items()}


def _check(model, variables, layer: str, size: int, filters) -> np.ndarray:
    taps = cached(model, ("tap_shapes", size), lambda: _tap_shapes(model, variables, size))
    if layer not in taps or len(taps[layer]) != 4:
        names = ", ".join(n for n, s in taps.items() if len(s) == 4)
        raise KeyError(f"no feature-map layer {layer!r} in {type(model).__name__} at {size}x{size}; available: {names}")
    n_ch = taps[layer][-1]
    filters = np.asarray(filters).reshape(-1)
    if filters.size == 0 or not np.issubdtype(filters.dtype, np.integer):
        raise ValueError(f"filters must be a non-empty list of channel indices, got {filters!r}")
    if filters.min() < 0 or filters.max() >= n_ch:
        raise ValueError(f"layer {layer!r} has {n_ch} filters (0..{n_ch - 1}); got {filters.tolist()}")
    return filters.astype(np.int32)


def filter_losses(acts, filters):
    """Mean activation of filter filters[i] in image i: [N, h, w, C], [N] -> [N]."""
    picked = jnp.take_along_axis(acts, filters[:, None, None, None], axis=-1)
    return jnp.mean(picked, axis=(1, 2, 3))


def _normalized_grad(acts, variables, x, filters):
    def total(x):
        losses = filter_losses(acts(variables, x), filters)
        return losses.sum(), losses  # images are independent: d(sum)/d(x_i) = d(loss_i)/d(x_i)

    (_, losses), g = jax.value_and_grad(total, has_aux=True)(x)
    rms = jnp.sqrt(jnp.mean(jnp.square(g), axis=(1, 2, 3), keepdims=True))
    return losses, g / (rms + 1e-5)


def _moves(g):
    """bool [N]: image i's gradient has a non-zero entry."""
    return jnp.any(g.reshape(g.shape[0], -1) != 0, axis=1)


def ascent_gradient(model, variables, layer: str, images, filters, preprocess: Optional[Callable] = None):
    """One 'dlwp' step's ingredients for image i and filter i: (losses [N], step directions [N, H, W, 3]).

    The direction is d(mean activation)/d(image) divided by its root mean
    square over the image + 1e-5 (DLwP listing 5.34), per image.
    """
    images = jnp.asarray(images, jnp.float32)
    filters = _check(model, variables, layer, images.shape[1], filters)
    fn = cached(model, ("ascent_gradient", layer, preprocess), lambda: backend.jit(lambda v, x, f: _normalized_grad(_acts_fn(model, layer, preprocess), v, x, f)))
    return fn(variables, images, jnp.asarray(filters))


def dlwp_start(seed: int, filters, size: int):
    """Grey noise `uniform[0, 1) * 20 + 128` [N, size, size, 3], image i keyed by (seed, filters[i])."""
    keys = jax.vmap(lambda f: jax.random.fold_in(jax.random.key(seed), f))(jnp.asarray(filters, jnp.int32))
    return jax.vmap(lambda k: jax.random.uniform(k, (size, size, 3)) * 20.0 + 128.0)(keys)


def _dlwp_loop(model, layer, preprocess, steps, step_size, size):
    acts = _acts_fn(model, layer, preprocess)

    def run(variables, filters, seed):
        def step(x, _):
            losses, g = _normalized_grad(acts, variables, x, filters)
            return x + step_size * g, (losses, _moves(g))

        x, (losses, moved) = jax.lax.scan(step, dlwp_start(seed, filters, size), None, length=steps)
        return x, losses.T, ~jnp.any(moved, axis=0)

    return backend.jit(run)


def _regularized_loop(model, layer, preprocess, steps, step_size, size):
    acts = _acts_fn(model, layer, preprocess)
    opt = optax.adam(0.05 * step_size)

    def run(variables, filters, seed):
        base = jax.random.key(seed)
        spec = jax.vmap(lambda f: transforms.init_spectrum(jax.random.fold_in(base, f), 1, size, size)[0])(filters)

        def loss_fn(spec, key):
            img = transforms.spectrum_to_image(spec, size, size)
            keys = jax.vmap(lambda f: jax.random.fold_in(key, f))(filters)
            moved = jax.vmap(lambda k, im: transforms.random_affine(k, im[None])[0])(keys, img)
            losses = filter_losses(acts(variables, moved), filters)
            return -losses.sum(), losses

        def step(carry, i):
            spec, state = carry
            (_, losses), g = jax.value_and_grad(loss_fn, has_aux=True)(spec, jax.random.fold_in(base, 1_000_003 + i))
            updates, state = opt.update(g, state, spec)
            return (optax.apply_updates(spec, updates), state), (losses, _moves(g))

        (spec, _), (losses, moved) = jax.lax.scan(step, (spec, opt.init(spec)), jnp.arange(steps))
        return transforms.spectrum_to_image(spec, size, size), losses.T, ~jnp.any(moved, axis=0)

    return backend.jit(run)


def filter_patterns(model, variables, layer: str, filters: Sequence[int], *, size: int = 150, steps: int = 40,
                    step_size: float = 1.0, method: str = "dlwp", seed: int = 0, preprocess: Optional[Callable] = None,
                    batch_size: Optional[int] = None) -> FilterPatterns:
    """Input patterns that maximise the mean activation of each filter of `layer`.

    Returns `FilterPatterns(images uint8 [N, size, size, 3], losses float32
    [N, steps])`; `.dead` flags filters that never activated. `preprocess`
    maps the [0, 255] image to the model's input before every forward pass
    (the book's recipe feeds the image unprocessed: leave it None for
    'dlwp'). `batch_size` ascends at most that many filters at a time
    (memory); the results do not depend on it.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if steps < 1 or size < 1:
        raise ValueError(f"steps and size must be >= 1, got steps={steps}, size={size}")
    filters = _check(model, variables, layer, size, filters)
    build = {"dlwp": _dlwp_loop, "regularized": _regularized_loop}[method]
    run = cached(model, ("filters", method, layer, preprocess, steps, float(step_size), size), lambda: build(model, layer, preprocess, steps, step_size, size))
    chunk = batch_size or len(filters)
    images, losses, flat = [], [], []
    for start in range(0, len(filters), chunk):
        part = filters[start : start + chunk]
        n = len(part)
        if n < chunk:  # pad the last chunk so every call reuses one compiled shape
            part = np.concatenate([part, np.repeat(part[-1:], chunk - n)])
        x, l, f = run(variables, jnp.asarray(part), seed)
        images.append(np.asarray(x)[:n])
        losses.append(np.asarray(l)[:n])
        flat.append(np.asarray(f)[:n])
    images, losses, flat = np.concatenate(images), np.concatenate(losses).astype(np.float32), np.concatenate(flat)
    images = deprocess(images) if method == "dlwp" else np.clip(np.round(images), 0, 255).astype(np.uint8)
    stuck = flat & (losses.max(axis=1) > 0)
    if stuck.any():
        warnings.warn(
            f"filter(s) {filters[stuck].tolist()} of {layer!r} are active but their mean activation has an exactly "
            f"zero gradient with respect to the image at every step, so their images are only the starting noise "
            f"(FilterPatterns.dead flags them): the layer does not depend on the input through differentiable "
            f"operations (a stop_gradient or an integer operation below it).",
            stacklevel=2,
        )
    return FilterPatterns(images, losses, flat)


def deprocess(x) -> np.ndarray:
    """DLwP listing 5.37, per image [..., H, W, 3]: centre, /(std + 1e-5), *0.1 + 0.5, clip to [0, 1], *255 to uint8."""
    x = np.asarray(x, np.float64)
    axes = (-3, -2, -1)
    x = x - x.mean(axis=axes, keepdims=True)
    x = x / (x.std(axis=axes, keepdims=True) + 1e-5)
    x = np.clip(x * 0.1 + 0.5, 0, 1)
    return (x * 255).astype(np.uint8)
