"""The report's figures: a headline metric per variant (each seed a dot, the mean and
its 95% interval), and the learning curves of every run, coloured by variant."""
from __future__ import annotations

import os
from typing import Optional

from fluxseg.sweep import runs as runs_lib

CURVES_PNG = "curves.png"


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _label(v: dict, baselines: set) -> str:
    # One override per line keeps long grids readable under the axis.
    text = "\n".join(f"{k.split('.')[-1]}={val}" for k, val in v["overrides"].items()) or v["name"]
    return text + ("\n(baseline)" if v["name"] in baselines else "")


def metric_figure(root: str, res: dict, metric: str) -> str:
    """<root>/<metric>.png: x = variants, y = the final ``metric`` of each run."""
    plt = _pyplot()
    rows = [v for v in res["variants"] if metric in v["metrics"]]
    baselines = {v.get("baseline") for v in res["variants"]}
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(rows) + 1.5), 4.2), dpi=110)
    for i, v in enumerate(rows):
        s = v["metrics"][metric]
        n = len(s["values"])
        # Seeds spread sideways in a fixed pattern so equal values stay visible.
        xs = [i - 0.12 + 0.24 * (k / (n - 1) if n > 1 else 0.5) for k in range(n)]
        ax.scatter(xs, s["values"], s=22, color=f"C{i}", alpha=0.8, zorder=3,
                   label="one seed (final eval)" if i == 0 else None)
        ax.hlines(s["mean"], i - 0.25, i + 0.25, color="black", lw=2, zorder=4,
                  label="mean" if i == 0 else None)
        if s["ci95"]:
            ax.errorbar(i + 0.3, s["mean"], yerr=[[s["mean"] - s["ci95"][0]], [s["ci95"][1] - s["mean"]]],
                        fmt="none", ecolor="black", capsize=4, lw=1.2, zorder=4,
                        label="95% CI of the mean" if i == 0 else None)
        ax.annotate(f"n={n}", (i, 0), xycoords=("data", "axes fraction"), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=8, color="0.35")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([_label(v, baselines) for v in rows], fontsize=8)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    split = res.get("eval_split") or "eval"
    ax.set_ylabel(f"{metric} ({split}, final step)")
    ax.set_title(f"{metric} per seed: {res['config']}", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = os.path.join(root, f"{metric.replace('/', '_')}.png")
    fig.savefig(path)
    plt.close(fig)
    return path


def _curve(records: list[dict], split: Optional[str], key: str) -> tuple[list, list]:
    by_step = {}
    for r in records:  # a resumed run logs some steps twice; the newest record wins
        if (r.get("split") == split) and isinstance(r.get(key), (int, float)):
            by_step[int(r["step"])] = float(r[key])
    steps = sorted(by_step)
    return steps, [by_step[s] for s in steps]


def curves_figure(root: str, res: dict) -> Optional[str]:
    """<root>/curves.png: training loss and the first headline metric against the step."""
    if not res["runs"]:
        return None
    plt = _pyplot()
    metric = res["headline"][0] if res["headline"] else "loss"
    # One step axis for both: runs that evaluate only at the end show their dots at the end.
    fig, (ax_loss, ax_eval) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110, sharex=True)
    colours = {v["name"]: f"C{i}" for i, v in enumerate(res["variants"])}
    drawn = set()
    for r in res["runs"]:
        records = runs_lib.read_metrics(os.path.join(root, r["path"]))
        label = r["variant"] if r["variant"] not in drawn else None
        steps, loss = _curve(records, "train", "loss")
        if steps:
            ax_loss.plot(steps, loss, color=colours[r["variant"]], lw=1, alpha=0.7, label=label)
            drawn.add(r["variant"])
        steps, vals = _curve(records, res.get("eval_split"), metric)
        if steps:
            ax_eval.plot(steps, vals, color=colours[r["variant"]], lw=1, alpha=0.7,
                         marker="o", ms=3)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss (mean since the previous log)")
    ax_loss.set_title("training loss, one line per run", fontsize=10)
    ax_eval.set_xlabel("step")
    ax_eval.set_ylabel(f"{metric} ({res.get('eval_split') or 'eval'})")
    ax_eval.set_title(f"{metric} at each eval, one line per run", fontsize=10)
    for ax in (ax_loss, ax_eval):
        ax.grid(alpha=0.3)
    if drawn:
        ax_loss.legend(fontsize=8, title="variant", title_fontsize=8)
    fig.tight_layout()
    path = os.path.join(root, CURVES_PNG)
    fig.savefig(path)
    plt.close(fig)
    return path
