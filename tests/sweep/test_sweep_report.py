"""The report and the run status, on sweep directories written by hand (no training)."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from fluxseg.sweep import report, runs, stats

TOTAL = 100


def fake_run(workdir, final=None, *, ckpt_steps=(TOTAL,), returncode=0, log="", evals=True):
    """A workdir as the training loop leaves it: config.json, metrics.jsonl, checkpoints/<step>/."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump({"num_classes": 3, "num_train_steps": TOTAL,
                   "data": {"eval_split": "validation", "task": "segmentation"}}, f)
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        for step in (50, TOTAL):
            f.write(json.dumps({"step": step, "split": "train", "loss": 1.0 / step}) + "\n")
        if final is not None and evals:
            f.write(json.dumps({"step": TOTAL, "split": "validation", **final}) + "\n")
        f.write('{"step": 7, "spl')  # a line cut short by a kill is skipped
    for s in ckpt_steps:
        os.makedirs(os.path.join(workdir, "checkpoints", str(s)), exist_ok=True)
    with open(os.path.join(workdir, runs.LOG_FILE), "w") as f:
        f.write(log or "training...\n")
    if returncode is not None:
        runs.write_exit(workdir, returncode, 1.0)


def test_status_is_read_from_the_runs_own_records(tmp_path):
    fake_run(tmp_path / "done", {"mIoU": 0.5})
    assert runs.status(str(tmp_path / "done")).state == runs.FINISHED
    assert runs.status(str(tmp_path / "done")).final["mIoU"] == 0.5
    # The final eval written but its checkpoint not (killed between the two): not finished.
    fake_run(tmp_path / "nockpt", {"mIoU": 0.5}, ckpt_steps=(50,), returncode=None)
    st = runs.status(str(tmp_path / "nockpt"))
    assert st.state == runs.PARTIAL and st.step == 50 and st.describe() == "partial (step 50 of 100)"
    # Stopped by SIGTERM: exit status 0, no final eval.
    fake_run(tmp_path / "stopped", None, ckpt_steps=(50,), returncode=0)
    assert runs.status(str(tmp_path / "stopped")).state == runs.PARTIAL
    fake_run(tmp_path / "crashed", None, ckpt_steps=(50,), returncode=1)
    st = runs.status(str(tmp_path / "crashed"))
    assert st.state == runs.FAILED and st.describe() == "failed (exit status 1, checkpoint at step 50)"
    assert runs.status(str(tmp_path / "absent")).state == runs.NOT_STARTED
    # An exit status left by an earlier failure does not outweigh a finished run.
    fake_run(tmp_path / "rerun", {"mIoU": 0.5}, returncode=1)
    assert runs.status(str(tmp_path / "rerun")).state == runs.FINISHED


def _sweep(root, entries, baseline):
    table = runs.plan(entries)
    runs.save_sweep(str(root), {"config": "experiments/x.py", "overrides": [], "command": "fluxseg sweep x",
                                "runs": [r.to_json() for r in table], "baseline": baseline})
    return table


def test_report_per_variant_with_missing_seeds_and_welch_against_the_baseline(tmp_path):
    rng = np.random.default_rng(0)
    table = _sweep(tmp_path, [{"model_kwargs.transpose_init": i, "seed": s}
                              for i in ("bilinear", "xavier") for s in range(5)],
                   {"model_kwargs.transpose_init": "bilinear"})
    values = {}
    for r in table:
        if r.variant == "transpose_init=xavier" and r.seed == 3:
            fake_run(tmp_path / r.path, None, ckpt_steps=(50,), returncode=1, log="Traceback\nOOM\n")
            continue
        if r.variant == "transpose_init=xavier" and r.seed == 4:
            continue  # never started
        m = {"mIoU": float(rng.uniform(0.2, 0.4)), "pixel_acc": float(rng.uniform(0.8, 0.9)),
             "IoU/circle": float(rng.uniform(0, 1)), "loss": float(rng.uniform(0.5, 1))}
        values[r.path] = m
        fake_run(tmp_path / r.path, m)

    files = report.write(str(tmp_path))
    names = sorted(os.path.basename(f) for f in files)
    assert names == ["curves.png", "mIoU.png", "pixel_acc.png", "results.json", "results.md"]
    for f in files:
        if f.endswith(".png"):
            with Image.open(f) as im:
                assert im.size[0] > 300 and im.size[1] > 300
    res = json.load(open(tmp_path / "results.json"))
    assert res["headline"] == ["mIoU", "pixel_acc"]  # the task's, those the runs have
    assert (res["runs_planned"], res["runs_finished"]) == (10, 8)
    bil, xav = res["variants"]
    assert bil["name"] == "transpose_init=bilinear" and bil["baseline"] == bil["name"]
    for v in (bil, xav):
        for metric in ("mIoU", "pixel_acc", "IoU/circle", "loss"):
            s = v["metrics"][metric]
            # every value traceable: the seed and workdir it came from
            assert s["values"] == [values[p][metric] for p in s["runs"]]
            assert s["runs"] == [f"{v['name']}/seed={k}" for k in s["seeds"]]
            assert s == {**stats.summary(s["values"]), "seeds": s["seeds"], "runs": s["runs"]}
    assert xav["seeds"] == [0, 1, 2] and xav["metrics"]["mIoU"]["n"] == 3
    assert [(m["seed"], m["status"]) for m in xav["missing"]] == [
        (3, "failed (exit status 1, checkpoint at step 50)"), (4, "not started")]
    assert xav["missing"][0]["log"] == "transpose_init=xavier/seed=3/log.txt"
    assert xav["unequal_seeds"] is True
    c = xav["comparison"]["mIoU"]
    ref = stats.welch(xav["metrics"]["mIoU"]["values"], bil["metrics"]["mIoU"]["values"])
    assert c["p"] == pytest.approx(ref["p"]) and c["verdict"] == stats.verdict(
        "transpose_init=xavier", "transpose_init=bilinear", ref)

    md = open(tmp_path / "results.md").read()
    assert "## Missing runs" in md and "transpose_init=xavier seed 3: failed (exit status 1" in md
    assert "over unequal seeds" in md and "seed 4: not started" in md
    assert f"- mIoU: {c['verdict']}" in md
    s = bil["metrics"]["mIoU"]
    assert f"| transpose_init=bilinear | 5 | {stats.fmt(s['mean'])} ± {stats.fmt(s['std'])} |" in md


def test_baseline_pairs_each_variant_with_its_own_and_n1_gets_no_interval(tmp_path):
    entries = [{"model_kwargs.variant": v, "optim.learning_rate": lr, "seed": s}
               for v in ("32s", "8s") for lr in ("1e-3", "3e-3") for s in (0, 1)]
    entries.append({"model_kwargs.variant": "16s", "optim.learning_rate": "1e-3", "seed": 0})
    table = _sweep(tmp_path, entries, {"model_kwargs.variant": "32s"})
    for i, r in enumerate(table):
        fake_run(tmp_path / r.path, {"mIoU": 0.1 * (i % 5) + 0.01 * r.seed, "pixel_acc": 0.5})
    res = report.build(str(tmp_path))
    pairs = {v["name"]: v["baseline"] for v in res["variants"]}
    assert pairs["variant=8s,learning_rate=3e-3"] == "variant=32s,learning_rate=3e-3"
    assert pairs["variant=8s,learning_rate=1e-3"] == "variant=32s,learning_rate=1e-3"
    assert pairs["variant=16s,learning_rate=1e-3"] == "variant=32s,learning_rate=1e-3"
    one = next(v for v in res["variants"] if v["name"].startswith("variant=16s"))
    assert one["metrics"]["mIoU"]["ci95"] is None and one["comparison"]["mIoU"]["p"] is None
    md = report.markdown(res, [])
    assert "| variant=16s,learning_rate=1e-3 | 1 |" in md and "– (n=1)" in md and "(no test)" in md
    # pixel_acc is equal everywhere: no spread, no test, said in words
    eight = next(v for v in res["variants"] if v["name"] == "variant=8s,learning_rate=1e-3")
    assert eight["comparison"]["pixel_acc"]["verdict"] == (
        "variant=8s,learning_rate=1e-3 vs variant=32s,learning_rate=1e-3: +0.000, no test "
        "(every run of both variants gave the same value; n=2 each)")


def test_a_damaged_final_checkpoint_makes_the_run_partial(tmp_path):
    from fluxseg.train import checkpoint, checksums

    workdir = tmp_path / "run"
    fake_run(workdir, {"mIoU": 0.5})
    final = workdir / "checkpoints" / str(TOTAL)
    for item in checkpoint.ITEMS:
        os.makedirs(final / item)
        (final / item / "data").write_bytes(bytes(range(256)) * 8)
    checksums.write(str(final), checkpoint.ITEMS)
    assert runs.status(str(workdir)).state == runs.FINISHED
    data = bytearray((final / "variables" / "data").read_bytes())
    data[100] ^= 1  # one flipped bit: Orbax could load it without an error
    (final / "variables" / "data").write_bytes(bytes(data))
    st = runs.status(str(workdir))
    assert st.state == runs.PARTIAL and st.final is None
    assert st.describe() == (f"partial (its final checkpoint, step {TOTAL}, is damaged: "
                             "variables/data differs from what was written (CRC-32))")
