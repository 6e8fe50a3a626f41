"""A sweep is a list of override dicts, one per variant: ``[{key: value}, ...]``.

Keys are config paths (``'optim.learning_rate'``, ``'model_kwargs.variant'``;
a leading ``'config.'`` is accepted and dropped); ``'seed'`` is the one key
that does not make a new variant: runs that differ only in their seed are
repetitions of one variant. Experiment files build their sweep from three
helpers, as big_vision's configs do with ``hyper.product`` / ``hyper.zip``:

    from fluxseg.sweep.grid import product, sweep, zip
    def get_sweep(arg=None):
        return product(sweep("model_kwargs.variant", ["32s", "16s", "8s"]),
                       sweep("seed", range(5)))

Values are Python values here; on the command line (``--grid key=v1,v2``)
they are text, parsed per run exactly as ``--config.key=value`` is.
"""
from __future__ import annotations

import builtins
import itertools
import re
from typing import Any, Iterable, Sequence

SEED = "seed"
Overrides = dict  # {config path: value}


def config_key(key: str) -> str:
    """'config.a.b' or 'a.b' -> 'a.b'."""
    key = str(key)
    return key[len("config."):] if key.startswith("config.") else key


def sweep(key: str, values: Iterable[Any]) -> list[Overrides]:
    """One variant per value of ``key``."""
    return [{config_key(key): v} for v in values]


def _merge(dicts: Sequence[Overrides]) -> Overrides:
    out: Overrides = {}
    for d in dicts:
        for k, v in d.items():
            k = config_key(k)
            if k in out:
                raise ValueError(f"the sweep sets {k!r} twice in one run ({out[k]!r} and {v!r}); "
                                 "combine different keys, or give the values in one sweep()")
            out[k] = v
    return out


def product(*sweeps: Sequence[Overrides]) -> list[Overrides]:
    """Every combination of one entry from each sweep (the first varies slowest)."""
    return [_merge(combo) for combo in itertools.product(*sweeps)]


def zip(*sweeps: Sequence[Overrides]) -> list[Overrides]:  # noqa: A001 - big_vision's name
    """The i-th entries of all sweeps together; the sweeps must have one length."""
    lengths = {len(s) for s in sweeps}
    if len(lengths) > 1:
        raise ValueError(f"zip() needs sweeps of one length, got lengths {[len(s) for s in sweeps]}")
    return [_merge(combo) for combo in builtins.zip(*sweeps)]


def split_values(text: str) -> list[str]:
    """'a,b' -> ['a', 'b']; commas inside brackets or quotes stay: '(1, 2),(3, 4)' -> 2 values."""
    values, depth, quote, current = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(current.strip())
            current = ""
            continue
        current += ch
    values.append(current.strip())
    if any(v == "" for v in values):
        raise ValueError(f"empty value in {text!r}; expected comma-separated values, e.g. 1e-3,3e-3")
    return values


def parse_grid(flag: str) -> list[Overrides]:
    """``'key=v1,v2'`` (the text of one ``--grid``) -> ``[{key: 'v1'}, {key: 'v2'}]``."""
    key, sep, values = flag.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--grid {flag!r}: expected KEY=V1,V2,... (e.g. optim.learning_rate=1e-3,3e-3)")
    return sweep(key.strip(), split_values(values))


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0..4]; '0,3,7' and '0-2,9' work too."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise ValueError(f"--seeds {text!r}: expected seeds like 0-4, 0,1,2 or 0-2,9")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {text!r} names a seed twice")
    return seeds


def value_text(value: Any) -> str:
    """A Python value as ``--config.key=`` text that ml_collections parses back to it."""
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(value_text(v) if not isinstance(v, str) else repr(v) for v in value) + \
            ("," if len(value) == 1 else "") + ")"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def with_seeds(variants: Sequence[Overrides], seeds: Sequence[int] | None) -> list[Overrides]:
    """``seeds`` (from --seeds) replace any seeds the variants set; None keeps theirs."""
    if seeds is None:
        return [dict(v) for v in variants]
    stripped = []
    for v in variants:
        s = {k: x for k, x in v.items() if k != SEED}
        if s not in stripped:
            stripped.append(s)
    return product(stripped, sweep(SEED, seeds))


_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def short_keys(keys: Iterable[str]) -> dict[str, str]:
    """Each dotted key -> its shortest trailing part that no other key ends with."""
    keys = list(dict.fromkeys(keys))
    out = {}
    for k in keys:
        parts = k.split(".")
        for n in range(1, len(parts) + 1):
            tail = ".".join(parts[-n:])
            if not any(o != k and (o == tail or o.endswith("." + tail)) for o in keys):
                break
        out[k] = tail
    return out


def variant_name(overrides: Overrides, short: dict[str, str]) -> str:
    """'transpose_init=xavier' or 'lr=0.001,variant=8s' (file-system safe); 'base' if empty."""
    parts = []
    for k, v in overrides.items():
        text = "-".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
        parts.append(f"{short[k]}={_UNSAFE.sub('_', text.strip('()[] ')).strip('_') or '_'}")
    return ",".join(parts) or "base"
