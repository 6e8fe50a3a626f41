"""fluxseg.runtime.compile_cache: a second run loads its compiled functions and trains identically."""
import json
import os
import subprocess
import sys

import pytest
from _helpers import REPO

from fluxseg.runtime import compile_cache


def test_the_folder_is_per_cpu_and_per_jax_version(tmp_path, monkeypatch):
    here = compile_cache.directory({compile_cache.ENV: str(tmp_path)})
    assert os.path.dirname(here) == str(tmp_path)
    monkeypatch.setattr(compile_cache, "cpu_identity", lambda: "Other CPU fpu sse sse2 avx2")
    other_cpu = compile_cache.directory({compile_cache.ENV: str(tmp_path)})
    monkeypatch.setattr(compile_cache, "_versions", lambda: "jax-0.0.1-jaxlib-0.0.1")
    other_jax = compile_cache.directory({compile_cache.ENV: str(tmp_path)})
    assert len({here, other_cpu, other_jax}) == 3
    assert compile_cache.directory({compile_cache.ENV: "off"}) is None
    home = compile_cache.directory({"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert home.startswith(str(tmp_path / "xdg" / "fluxseg" / "xla") + os.sep)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    return {**env, "JAX_PLATFORMS": "cpu", **extra}


def test_a_folder_given_to_jax_is_kept(tmp_path):
    code = "from fluxseg.runtime import compile_cache; print(compile_cache.enable())"
    env = _env(JAX_COMPILATION_CACHE_DIR=str(tmp_path / "mine"),
               **{compile_cache.ENV: str(tmp_path / "fluxseg")})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=300).stdout
    assert out.strip() == str(tmp_path / "mine")


def _train(workdir, cache, data_dir):
    args = [sys.executable, "launch.py", "--workdir", str(workdir),
            "--config.model_kwargs.features=4", "--config.data.builder_config=small",
            f"--config.data.data_dir={data_dir}", "--config.data.crop_size=(32, 32)",
            "--config.batch_size=8", "--config.num_train_steps=6", "--config.log_every_steps=2",
            "--config.eval_every_steps=6", "--config.progress_bar=False",
            "--config.init_rng_impl=rbg"]
    # JAX_LOG_COMPILES: JAX then logs each cache hit as a warning.
    env = _env(JAX_LOG_COMPILES="1", **{compile_cache.ENV: str(cache)})
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        metrics = [json.loads(line) for line in f]
    timings = ("images_per_s", "data_wait")  # wall-clock measurements, not results
    return proc.stderr, [{k: v for k, v in m.items() if k not in timings} for m in metrics]


# What XLA logs when its CPU loader refuses a cached executable (on some Intel
# CPUs this jaxlib refuses even its own: jax-ml/jax#38445).
_REJECTED = ("XLA:CPU AOT", "Target machine feature", "Error reading persistent compilation cache")


def test_a_second_run_loads_its_functions_and_trains_identically(small_shapes_dir, tmp_path):
    cache = tmp_path / "cache"
    log1, first = _train(tmp_path / "a", cache, small_shapes_dir)
    (folder,) = os.listdir(cache)  # one folder: this jax and this CPU
    entries = os.listdir(cache / folder)
    for fn in ("jit_init_state", "jit_train_step", "jit_eval_step"):
        assert any(e.startswith(fn + "-") for e in entries), entries
    assert "Persistent compilation cache hit" not in log1
    log2, second = _train(tmp_path / "b", cache, small_shapes_dir)
    assert second == first and any(m["split"] == "validation" for m in first)
    if any(s in log2 for s in _REJECTED) and "Persistent compilation cache hit" not in log2:
        pytest.skip("this jaxlib's CPU loader rejects the executables it cached on this CPU "
                    "(jax-ml/jax#38445, LLVM tuning flags taken for CPU features); "
                    "the run recompiled, with the same results")
    for fn in ("jit_init_state", "jit_train_step", "jit_eval_step"):
        assert f"Persistent compilation cache hit for '{fn}'" in log2
