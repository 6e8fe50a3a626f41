"""Writes ISBI-2012-like multi-page TIFFs (for tests, benchmarks and demos).

The slices are synthetic "cells": a Voronoi tessellation whose borders are
dark membranes, so labels follow from the pixels as in the real stacks
(0 = membrane, 255 = cell), with noise on the image only.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from fluxseg.data.isbi.builder import FILES


def cell_slice(rng: np.random.Generator, size, num_cells: int = 12, membrane: int = 2):
    """(image uint8 [H, W], labels uint8 [H, W] in {0, 255}) of one synthetic slice."""
    h, w = size
    centres = rng.uniform(0, 1, (num_cells, 2)) * (h, w)
    yy, xx = np.mgrid[0:h, 0:w]
    d = np.sqrt((yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2)
    d.sort(axis=-1)
    border = (d[..., 1] - d[..., 0]) < membrane  # near two cells at once: a membrane
    labels = np.where(border, 0, 255).astype(np.uint8)
    image = np.where(border, 40.0, 190.0) + rng.normal(0, 12, (h, w))
    return np.clip(image, 0, 255).astype(np.uint8), labels


def save_stack(path, slices) -> None:
    """Multi-page 8-bit TIFF, one page per slice (the challenge files' layout)."""
    pages = [Image.fromarray(np.asarray(s, np.uint8), mode="L") for s in slices]
    pages[0].save(path, format="TIFF", save_all=True, append_images=pages[1:])


def write_isbi(directory, *, num_slices: int = 30, size=(64, 64), seed: int = 0) -> dict:
    """Writes train-volume.tif, train-labels.tif, test-volume.tif; returns the arrays."""
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    train = [cell_slice(rng, size) for _ in range(num_slices)]
    test = [cell_slice(rng, size)[0] for _ in range(num_slices)]
    volume, labels = np.stack([t[0] for t in train]), np.stack([t[1] for t in train])
    for name, stack in zip(FILES, (volume, labels, np.stack(test))):
        save_stack(os.path.join(directory, name), stack)
    return {"volume": volume, "labels": labels, "test": np.stack(test)}
