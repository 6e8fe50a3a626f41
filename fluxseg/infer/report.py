"""The report of `fluxseg eval`: the scores as JSON and as a markdown table.

The scores themselves are the run's task's (fluxseg.tasks); this module only
lays them out: the headline scores in a row, then per-class IoU and accuracy
with the number of targets of each class (support).
"""
from __future__ import annotations

import json
import math


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def markdown(result: dict) -> str:
    """The headline table, then per-class IoU and accuracy (percent), of an
    ``evaluate`` result (its 'headline', 'class_names' and 'support' say what to show)."""
    head, class_names = result["headline"], result["class_names"]
    lines = [f"# {result['workdir']} step {result['step']}, split {result['split']}"
             f" ({result['num_examples']} images, tta={result['tta']}, scales={result['scales']})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
             "| " + " | ".join(_fmt(result[k]) for k in head) + " |", ""]
    cols = [(k, label) for k, label in (("IoU", "IoU"), ("acc", "accuracy"))
            if any(f"{k}/{n}" in result for n in class_names)]
    if cols:
        support = result.get("support", [])
        lines += ["| class | " + " | ".join(c[1] for c in cols) + " | support |",
                  "|---|" + "---|" * len(cols) + "---|"]
        for i, name in enumerate(class_names):
            vals = " | ".join(_fmt(result.get(f"{k}/{name}")) for k, _ in cols)
            lines.append(f"| {name} | {vals} | {support[i] if i < len(support) else ''} |")
        lines.append("")
    return "\n".join(lines)


def write(result: dict, json_path: str, md_path: str) -> None:
    """``result`` as JSON (NaN written as null) and as ``markdown``."""
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()}
    with open(json_path, "w") as f:
        json.dump(clean, f, indent=1)
    with open(md_path, "w") as f:
        f.write(markdown(result))
