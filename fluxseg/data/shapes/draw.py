"""Procedural drawing of one `fluxseg_shapes` example, in plain numpy.

An example is a textured background with 2-5 filled shapes painted on it in
order (later shapes occlude earlier ones). Everything is drawn on the whole
pixel grid with boolean masks, so one example costs a few dozen vectorised
array operations.

Class ids in the mask: 0 background, 1 circle, 2 square, 3 triangle,
4 ring, 5 cross. The classification label is the class of the object with
the most VISIBLE pixels, minus one (labels 0..4 index OBJECT_CLASS_NAMES),
because a classifier has no "background" class.
"""
from __future__ import annotations

import numpy as np

CLASS_NAMES = ("background", "circle", "square", "triangle", "ring", "cross")
OBJECT_CLASS_NAMES = CLASS_NAMES[1:]
NUM_CLASSES = len(CLASS_NAMES)

# Colours for drawing predicted masks (one RGB row per class id).
COLORMAP = np.array(
    [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25],
     [0, 130, 200], [245, 130, 48]], np.uint8)

# Split -> stream id, so example i of a split never depends on the sizes or
# the generation order of the other splits.
SPLIT_STREAMS = {"train": 0, "validation": 1, "test": 2}

_MIN_OBJECTS, _MAX_OBJECTS = 2, 5
# Object "radius" (circumradius) as a fraction of the image side.
_MIN_RADIUS, _MAX_RADIUS = 0.10, 0.24
# Objects must differ from the background colour by at least this much
# (Euclidean RGB distance) so that every class is learnable.
_MIN_CONTRAST = 80.0


def _shape_mask(cls: int, u: np.ndarray, v: np.ndarray, r: float,
                theta: float) -> np.ndarray:
    """Boolean [H, W] mask of one shape; (u, v) are pixel offsets from its centre."""
    # Rotate the frame so squares, triangles and crosses get any orientation.
    c, s = np.cos(theta), np.sin(theta)
    a, b = c * u + s * v, -s * u + c * v
    if cls == 1:  # circle
        return a * a + b * b <= r * r
    if cls == 2:  # square (half side 0.8 r: area close to the circle's)
        return np.maximum(np.abs(a), np.abs(b)) <= 0.8 * r
    if cls == 3:  # equilateral triangle = three half-planes at the inradius r/2
        inside = np.ones(u.shape, bool)
        for k in range(3):
            phi = 2.0 * np.pi * k / 3.0
            inside &= a * np.cos(phi) + b * np.sin(phi) <= 0.5 * r
        return inside
    if cls == 4:  # ring
        d2 = a * a + b * b
        return (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)
    if cls == 5:  # cross
        w = 0.3 * r
        return ((np.abs(a) <= w) & (np.abs(b) <= r)) | (
            (np.abs(b) <= w) & (np.abs(a) <= r))
    raise ValueError(f"unknown shape class {cls}")


def _background(rng: np.random.Generator, yy, xx, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Textured background: base colour + random colour gratings + noise.

    Returns (float32 [H, W, 3] image, float32 [3] base colour).
    """
    base = rng.uniform(0.0, 255.0, 3)
    img = np.broadcast_to(base, (size, size, 3)).astype(np.float32)
    for _ in range(rng.integers(1, 4)):
        freq = rng.uniform(1.0, 6.0) * 2.0 * np.pi / size  # 1-6 cycles per image
        ang = rng.uniform(0.0, np.pi)
        wave = np.sin(freq * (np.cos(ang) * xx + np.sin(ang) * yy) + rng.uniform(0, 2 * np.pi))
        img += wave[..., None] * rng.uniform(-35.0, 35.0, 3).astype(np.float32)
    img += rng.normal(0.0, rng.uniform(3.0, 12.0), img.shape).astype(np.float32)
    return img, base


def _object_colour(rng: np.random.Generator, avoid: np.ndarray) -> np.ndarray:
    """A random RGB colour far enough from `avoid` (rejection sampling)."""
    for _ in range(20):
        colour = rng.uniform(0.0, 255.0, 3)
        if np.linalg.norm(colour - avoid) >= _MIN_CONTRAST:
            return colour
    # Fall back to the colour "opposite" the background, always far enough.
    return 255.0 - avoid


def draw_example(seed: int, split: str, index: int, size: int) -> dict:
    """Draws example `index` of `split`, a pure function of its arguments.

    Returns a dict with
      image: uint8 [size, size, 3] RGB,
      segmentation_mask: uint8 [size, size, 1] class ids (0 = background),
      label: int, class of the largest visible object minus 1 (0..4),
      objects_present: bool [5], which object classes are visible.
    """
    rng = np.random.default_rng([seed, SPLIT_STREAMS[split], index])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    img, base = _background(rng, yy, xx, size)
    mask = np.zeros((size, size), np.uint8)
    instance = np.full((size, size), -1, np.int32)  # which object owns a pixel
    classes = []
    for k in range(rng.integers(_MIN_OBJECTS, _MAX_OBJECTS + 1)):
        cls = int(rng.integers(1, NUM_CLASSES))
        cy, cx = rng.uniform(0.15 * size, 0.85 * size, 2)
        r = rng.uniform(_MIN_RADIUS, _MAX_RADIUS) * size
        theta = rng.uniform(0.0, 2.0 * np.pi)
        m = _shape_mask(cls, xx - cx, yy - cy, r, theta)
        colour = _object_colour(rng, base)
        # A linear shading ramp across the object, so it is not a flat fill.
        g = rng.uniform(-1.0, 1.0, 2) * (25.0 / r)
        shade = g[0] * (xx - cx) + g[1] * (yy - cy)
        fill = colour[None, None, :] + shade[..., None]
        img[m] = fill[m]
        mask[m] = cls
        instance[m] = k
        classes.append(cls)
    # Noise on top of everything, so object interiors are not flat either.
    img += rng.normal(0.0, 4.0, img.shape).astype(np.float32)

    areas = np.bincount(instance[instance >= 0], minlength=len(classes))
    largest = int(np.argmax(areas))  # ties: the object drawn first
    present = np.zeros(NUM_CLASSES - 1, bool)
    present[np.unique(mask[mask > 0]) - 1] = True
    return {
        "image": np.clip(np.rint(img), 0, 255).astype(np.uint8),
        "segmentation_mask": mask[..., None],
        "label": classes[largest] - 1,
        "objects_present": present,
    }
