"""Argument types and options shared by the `fluxseg` subcommands."""
from __future__ import annotations

import argparse
import ast


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected H,W,C as three positive integers (e.g. 224,224,3), got {text!r}")
    return shape


def parse_override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare string such as variant=8s


def parse_scales(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive factors such as 0.75,1,1.25, got {text!r}")
    return values


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workdir", required=True, help="the run directory (its newest checkpoint is used)")
    p.add_argument("--step", type=int, default=None, help="a checkpoint step other than the newest")
    p.add_argument("--tta", choices=["flip"], default=None, help="average with the mirrored image")
    p.add_argument("--scales", type=parse_scales, default=(1.0,), help="multi-scale factors, e.g. 0.75,1,1.25")
