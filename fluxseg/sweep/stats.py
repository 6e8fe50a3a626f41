"""Statistics over seeds: a variant's mean and its Student-t interval, and Welch's
comparison of two variants, with the verdict in words.

A variant's runs differ only in their seed, so their final metrics are a
sample of what the recipe gives; the interval is for the recipe's mean,
``mean ± t(0.975, n-1) · std / sqrt(n)`` with the sample standard deviation
(n-1 in the denominator). Two variants are compared with Welch's t-test
(Welch 1947), which does not assume equal spreads, and the Welch-Satterthwaite
degrees of freedom give the interval of the difference. With one run a
variant has no spread, hence no interval and no test: the result says so
instead of carrying NaNs.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

LEVEL = 0.95      # confidence level of every interval
ALPHA = 1 - LEVEL  # two-sided significance threshold of the verdict


def _t():
    from scipy import stats  # a dependency of fluxseg; imported when numbers are asked for
    return stats.t


def summary(values: Sequence[float]) -> dict:
    """{'mean', 'std', 'min', 'max', 'n', 'ci95': [lo, hi], 'values'}; std and ci95 are
    None for n=1 (no spread to measure)."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        raise ValueError("summary() of no values")
    mean = math.fsum(xs) / n
    out = {"mean": mean, "std": None, "min": min(xs), "max": max(xs), "n": n, "ci95": None, "values": xs}
    if n > 1:
        std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
        half = _t().ppf(1 - ALPHA / 2, n - 1) * std / math.sqrt(n)
        out.update(std=std, ci95=[float(mean - half), float(mean + half)])
    return out


def welch(values: Sequence[float], baseline: Sequence[float]) -> dict:
    """``values`` against ``baseline``: {'difference' (mean - baseline mean), 'ci95', 't',
    'df', 'p', 'n', 'n_baseline'}; without a test (n < 2 on a side, or no spread on
    either) 'p', 't', 'df' and 'ci95' are None and 'untestable' says why."""
    a, b = summary(values), summary(baseline)
    out = {"difference": a["mean"] - b["mean"], "ci95": None, "t": None, "df": None, "p": None,
           "n": a["n"], "n_baseline": b["n"], "untestable": None}
    if a["n"] < 2 or b["n"] < 2:
        out["untestable"] = "one run on a side: no spread to compare with; run more seeds"
        return out
    va, vb = a["std"] ** 2 / a["n"], b["std"] ** 2 / b["n"]
    se = math.sqrt(va + vb)
    if se == 0:
        out["untestable"] = "every run of both variants gave the same value"
        return out
    df = (va + vb) ** 2 / (va ** 2 / (a["n"] - 1) + vb ** 2 / (b["n"] - 1))
    t = out["difference"] / se
    half = _t().ppf(1 - ALPHA / 2, df) * se
    out.update(t=t, df=df, p=float(2 * _t().sf(abs(t), df)),
               ci95=[float(out["difference"] - half), float(out["difference"] + half)])
    return out


def fmt(x: Optional[float], signed: bool = False) -> str:
    """3 decimals for metric-sized numbers, 2 significant digits below 0.01."""
    if x is None:
        return "–"
    sign = "+" if signed else ""
    if x == 0 or abs(x) >= 0.01:
        return f"{x:{sign}.3f}"
    return f"{x:{sign}.2g}"


def fmt_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def _n_words(c: dict) -> str:
    return f"n={c['n']} each" if c["n"] == c["n_baseline"] else f"n={c['n']} vs {c['n_baseline']}"


def verdict(name: str, baseline: str, c: dict) -> str:
    """One sentence on ``welch()``'s result ``c`` for variant ``name`` vs ``baseline``."""
    diff = fmt(c["difference"], signed=True)
    if c["p"] is None:
        return f"{name} vs {baseline}: {diff}, no test ({c['untestable']}; {_n_words(c)})"
    ci = f"{LEVEL:.0%} CI {fmt(c['ci95'][0], True)} to {fmt(c['ci95'][1], True)}"
    if c["p"] < ALPHA:
        word = "higher" if c["difference"] > 0 else "lower"
        return f"{name} is {word} than {baseline}: {diff} ({ci}, {fmt_p(c['p'])}, {_n_words(c)})"
    n = f"n={c['n']}" if c["n"] == c["n_baseline"] else _n_words(c)
    return (f"{name} and {baseline} are not distinguishable at {n} "
            f"({fmt_p(c['p'])}; difference {diff}, {ci})")
