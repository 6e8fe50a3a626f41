"""`fluxseg bench` runs the repository's benchmark scripts and passes their arguments through."""
import re
import subprocess
import sys

import pytest

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


def test_profile_shares_add_up():
    r = _bench("profile", "--model", "unet", "--batch", "1", "--size", "188,188", "--mode", "infer", "--top", "3")
    assert r.returncode == 0, r.stderr[-2000:]
    shares = [float(m) for m in re.findall(r"^\| [a-z /]+ \| \d+ \| ([\d.]+)% \|$", r.stdout, re.M)]
    assert shares and sum(shares) == pytest.approx(100, abs=0.5)
    assert "forward" in r.stdout and "backward" not in r.stdout  # an inference pass has no gradient ops


def test_unknown_benchmark_is_an_error_naming_the_choices():
    r = _bench("nope", timeout=60)
    assert r.returncode == 2 and "models, profile, train-step, gpu" in r.stderr
