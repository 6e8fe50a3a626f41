"""`fluxseg bench` runs the repository's benchmark scripts and passes their arguments through."""
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLUXSEG = [sys.executable, "-c", "import sys; from fluxseg.cli import main; sys.exit(main())"]


def _bench(*args, timeout=300):
    return subprocess.run([*FLUXSEG, "bench", *args], capture_output=True, text=True, timeout=timeout)


def test_models_benchmark_prints_a_measured_row():
    r = _bench("models", "--models", "unet", "--frameworks", "jax", "--batch", "1", "--size", "188,188",
               "--reps", "2", "--warmup", "1", "--modes", "infer")
    assert r.returncode == 0, r.stderr[-2000:]
    row = next(line for line in r.stdout.splitlines() if line.startswith("| unet | infer"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "1" and cells[3] == "188x188" and cells[5] == "fluxseg (jax)"
    img_s, ms_step = float(cells[6]), float(cells[9])
    assert img_s > 0 and ms_step == pytest.approx(1e3 / img_s, rel=0.01)  # one image per step


def test_export_benchmark_times_every_format_beside_jax():
    r = _bench("export", "--model", "unet", "--kwargs", '{"features": 2, "padding": "same"}',
               "--size", "32,32", "--batch", "1", "--reps", "1", timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = dict(re.findall(r"^(jax \(fluxseg\)|stablehlo|savedmodel|onnx)\s+([\d.]+)\s+[\d.]+$", r.stdout, re.M))
    assert set(rows) == {"jax (fluxseg)", "stablehlo", "savedmodel", "onnx"}
    ratios = {m[0]: float(m[1]) for m in re.findall(r"^(\S+(?: \(fluxseg\))?)\s+[\d.]+\s+([\d.]+)$",
                                                   r.stdout, re.M)}
    assert ratios["jax (fluxseg)"] == 1.0
    for name, rate in rows.items():  # each ratio is that runtime's rate over jax's
        assert float(rate) > 0
        assert ratios[name] == pytest.approx(float(rate) / float(rows["jax (fluxseg)"]), abs=0.006)


def test_profile_shares_add_up():
    r = _bench("profile", "--model", "unet", "--batch", "1", "--size", "188,188", "--mode", "infer", "--top", "3",
               "--calls", "3")
    assert r.returncode == 0, r.stderr[-2000:]
    shares = [float(m) for m in re.findall(r"^\| [a-z /]+ \| \d+ \| ([\d.]+)% \|$", r.stdout, re.M)]
    assert shares and sum(shares) == pytest.approx(100, abs=0.5)
    assert "forward" in r.stdout and "backward" not in r.stdout  # an inference pass has no gradient ops
    assert "(median of 3 traced calls)" in r.stdout
    busy = int(re.search(r"inside an attributed op (\d+)% of the wall time", r.stdout).group(1))
    assert 0 < busy <= 100


def test_profile_thread_busy_time_counts_nested_and_overlapping_ops_once():
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    try:
        from profile_step import _covered
    finally:
        sys.path.remove(os.path.join(REPO, "benchmarks"))
    # A library call [0, 10) with two ops nested in it, an overlapping op, a gap, a lone op.
    assert _covered([(0, 10), (2, 4), (3, 6), (8, 12), (20, 25)]) == 12 + 5
    assert _covered([]) == 0


def test_unknown_benchmark_is_an_error_naming_the_choices():
    r = _bench("nope", timeout=60)
    assert r.returncode == 2 and "models, profile, train-step, gpu" in r.stderr


def test_list_names_each_benchmark_and_the_script_it_runs():
    r = _bench("list", timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = dict(line.split(None, 1) for line in r.stdout.splitlines())
    assert set(rows) == {"models", "profile", "train-step", "gpu", "export", "input"}
    for name, path in rows.items():
        assert os.path.isfile(path) and os.path.dirname(path) == os.path.join(REPO, "benchmarks"), (name, path)
    assert rows["train-step"].endswith("train_step.py") and rows["gpu"].endswith("gpu_suite.sh")
