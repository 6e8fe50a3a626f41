"""The report of a sweep: results.json, results.md and figures in the sweep directory.

Per variant, every final eval metric over its seeds (stats.summary), each
value listed with the seed and workdir it came from; against the baseline
variant, the difference, its interval, Welch's p-value and a verdict in words
(stats.welch, stats.verdict). Runs that did not finish are listed with their
status and log, and a variant's numbers are over the runs that did: a
comparison over unequal seed sets says so. The headline metrics, the ones
plotted and put first, are the task's (``fluxseg.tasks.base.Task.headline``).

The baseline: the variant whose overrides are ``{**variant's, **baseline}``
(with ``--baseline variant=32s`` a grid of variant x lr compares each lr with
its own 32s), else the variant equal to the baseline itself (by default the
sweep's first variant).
"""
from __future__ import annotations

import json
import os
from typing import Optional

from fluxseg.sweep import runs as runs_lib, stats

RESULTS_JSON, RESULTS_MD = "results.json", "results.md"


def _scalars(record: dict) -> dict:
    return {k: float(v) for k, v in record.items()
            if k not in ("step", "split") and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _task_headline(configs: list[dict], metrics: set) -> list[str]:
    """The runs' tasks' headline scores (fluxseg.tasks: Task.headline), those the runs have."""
    from fluxseg.train import build, config as config_lib

    order = [m for c in configs for m in build.task(config_lib.saved_config(c)).headline]
    return [m for m in dict.fromkeys(order) if m in metrics]


def collect(root: str) -> dict:
    """Each planned run with its status and final metrics, grouped by variant."""
    record = runs_lib.load_sweep(root)
    runs, configs = [], []
    for r in record["runs"]:
        workdir = os.path.join(root, r.path)
        st = runs_lib.status(workdir)
        entry = {"path": r.path, "variant": r.variant, "seed": r.seed, "state": st.state,
                 "status": st.describe(), "step": st.step, "total": st.total,
                 "log": os.path.join(r.path, runs_lib.LOG_FILE), "metrics": None}
        if st.state == runs_lib.FINISHED:
            entry["metrics"] = _scalars(st.final)
            configs.append(runs_lib.read_json(os.path.join(workdir, "config.json")))
        runs.append(entry)
    return {"record": record, "runs": runs, "configs": configs}


def _partner(overrides: dict, baseline: dict, variants: list[tuple[str, dict]]) -> Optional[str]:
    target = {**overrides, **baseline}
    for name, o in variants:
        if o == target:
            return name
    for name, o in variants:
        if o == baseline:
            return name
    return None


def build(root: str, baseline: Optional[dict] = None) -> dict:
    """The content of results.json."""
    data = collect(root)
    record, runs = data["record"], data["runs"]
    baseline = record.get("baseline", {}) if baseline is None else baseline
    variants = runs_lib.variants(record["runs"])
    all_metrics = {m for r in runs if r["metrics"] for m in r["metrics"]}
    headline = _task_headline(data["configs"], all_metrics)
    out_variants = []
    for name, overrides in variants:
        mine = [r for r in runs if r["variant"] == name]
        done = [r for r in mine if r["metrics"] is not None]
        metrics = {}
        for m in sorted(all_metrics, key=lambda k: (k not in headline, headline.index(k) if k in headline else 0, k)):
            have = [r for r in done if m in r["metrics"]]
            if have:
                metrics[m] = {**stats.summary([r["metrics"][m] for r in have]),
                              "seeds": [r["seed"] for r in have], "runs": [r["path"] for r in have]}
        out_variants.append({
            "name": name, "overrides": overrides, "seeds_planned": [r["seed"] for r in mine],
            "seeds": [r["seed"] for r in done],
            "missing": [{k: r[k] for k in ("seed", "path", "status", "log")} for r in mine
                        if r["metrics"] is None],
            "metrics": metrics})
    by_name = {v["name"]: v for v in out_variants}
    for v in out_variants:
        base = _partner(v["overrides"], baseline, variants)
        if base is None or base == v["name"]:
            v["baseline"] = base
            continue
        b = by_name[base]
        v["baseline"] = base
        v["unequal_seeds"] = sorted(v["seeds"]) != sorted(b["seeds"])
        v["comparison"] = {}
        for m, s in v["metrics"].items():
            if m in b["metrics"]:
                c = stats.welch(s["values"], b["metrics"][m]["values"])
                c["verdict"] = stats.verdict(v["name"], base, c)
                v["comparison"][m] = c
    finished = sum(r["state"] == runs_lib.FINISHED for r in runs)
    final = data["configs"][0] if data["configs"] else {}
    return {"config": record["config"], "overrides": record.get("overrides", []),
            "command": record.get("command"), "baseline": baseline, "headline": headline,
            "eval_split": final.get("data", {}).get("eval_split"),
            "runs_planned": len(runs), "runs_finished": finished,
            "variants": out_variants, "runs": runs}


def _cell(s: dict) -> tuple[str, str, str]:
    mean_std = stats.fmt(s["mean"]) + (f" ± {stats.fmt(s['std'])}" if s["std"] is not None else "")
    ci = f"{stats.fmt(s['ci95'][0])}–{stats.fmt(s['ci95'][1])}" if s["ci95"] else "– (n=1)"
    return mean_std, ci, f"{stats.fmt(s['min'])}–{stats.fmt(s['max'])}"


def markdown(res: dict, figures: list[str]) -> str:
    lines = [f"# Sweep of `{res['config']}`", ""]
    if res.get("command"):
        lines += [f"Command: `{res['command']}`", ""]
    lines += [f"{res['runs_finished']} of {res['runs_planned']} runs finished. Each value is a run's "
              f"final eval on the {res.get('eval_split') or 'eval'} split; mean ± sample std over seeds, "
              f"the {stats.LEVEL:.0%} Student-t interval of the mean, and min–max.", ""]
    verdicts = [(m, v) for v in res["variants"] for m in res["headline"] if m in v.get("comparison", {})]
    if verdicts:
        lines += ["## Verdicts", ""]
        lines += [f"- {m}: {v['comparison'][m]['verdict']}" for m, v in verdicts]
        lines += ["", f"Two-sided Welch t-tests at {stats.ALPHA:.2f}, one per variant and metric, "
                  "not corrected for multiple comparisons.", ""]
    unequal = [v for v in res["variants"] if v.get("unequal_seeds")]
    missing = [(v, m) for v in res["variants"] for m in v["missing"]]
    if missing or unequal:
        lines += ["## Missing runs", ""]
        lines += [f"- {v['name']} seed {m['seed']}: {m['status']}; log `{m['log']}`" for v, m in missing]
        seeds = {v["name"]: v["seeds"] for v in res["variants"]}
        lines += [f"- {v['name']} is compared with {v['baseline']} over unequal seeds "
                  f"({v['seeds']} vs {seeds[v['baseline']]})" for v in unequal]
        lines.append("")
    metrics = res["headline"] + [m for m in ("loss",) if m not in res["headline"]]
    for m in metrics:
        rows = [v for v in res["variants"] if m in v["metrics"]]
        if not rows:
            continue
        lines += [f"## {m}", "", "| variant | n | mean ± std | 95% CI | min–max | vs baseline (Welch) |",
                  "|---|---|---|---|---|---|"]
        for v in rows:
            mean_std, ci, rng = _cell(v["metrics"][m])
            c = v.get("comparison", {}).get(m)
            vs = "baseline" if v["name"] == v.get("baseline") else "–"
            if c is not None:
                vs = stats.fmt(c["difference"], True) + (
                    f" [{stats.fmt(c['ci95'][0], True)}, {stats.fmt(c['ci95'][1], True)}], {stats.fmt_p(c['p'])}"
                    if c["p"] is not None else " (no test)")
            lines.append(f"| {v['name']} | {v['metrics'][m]['n']} | {mean_std} | {ci} | {rng} | {vs} |")
        lines.append("")
    lines += ["## Runs", "", "| run | " + " | ".join(res["headline"]) + " |",
              "|---|" + "---|" * len(res["headline"])]
    for r in res["runs"]:
        vals = [stats.fmt(r["metrics"].get(m)) if r["metrics"] else r["status"] for m in res["headline"]]
        lines.append(f"| `{r['path']}` | " + " | ".join(vals) + " |")
    lines += [""] + [f"![{os.path.splitext(f)[0]}]({f})" for f in figures] + [""]
    return "\n".join(lines)


def write(root: str, baseline: Optional[dict] = None) -> list[str]:
    """Writes results.json, results.md and the figures; returns their paths."""
    from fluxseg.sweep import plots

    res = build(root, baseline)
    figures = [plots.metric_figure(root, res, m) for m in res["headline"]
               if any(m in v["metrics"] for v in res["variants"])]
    curves = plots.curves_figure(root, res)
    figures = [os.path.basename(f) for f in figures + ([curves] if curves else [])]
    paths = [os.path.join(root, RESULTS_JSON), os.path.join(root, RESULTS_MD)]
    with open(paths[0], "w") as f:
        json.dump(res, f, indent=1)
    with open(paths[1], "w") as f:
        f.write(markdown(res, figures))
    return paths + [os.path.join(root, f) for f in figures]
