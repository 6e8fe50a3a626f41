"""`fluxseg sweep` refuses a bad command before anything starts, naming what is wrong;
the experiments' own sweeps are the whole command."""
import os
import textwrap

import pytest

from _sweep_paths import REPO, TINY

from fluxseg.cli import sweep as cli


def _run(argv, capsys):
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("args,message", [
    (["--grid", "optim.lr=1e-3,3e-3"],
     "--grid optim.lr: the config has no such key; the keys of config.optim are: accum_steps,"),
    (["--grid", "model_kwargs.widht=4,8"], "--grid model_kwargs.widht: the config has no such key"),
    (["--config.optim.nosuch=1"], "--config.optim.nosuch: the config has no such key"),
    (["--grid", "num_train_steps=10,ten"],
     "run num_train_steps=ten/seed=0: flag --config.num_train_steps=ten: invalid literal for int()"),
    (["--grid", "seed=1,2"], "give the seeds with --seeds"),
    (["--config.num_train_steps=5", "--grid", "num_train_steps=1,2"],
     "--config.num_train_steps=5 sets a key the sweep varies (--grid num_train_steps)"),
    (["--grid", "num_train_steps=1,2", "--baseline", "num_train_steps=3"],
     "--baseline 'num_train_steps=3': the sweep's values of num_train_steps are 1, 2"),
    (["--seeds", "3-1"], "--seeds '3-1': expected seeds like 0-4"),
])
def test_bad_sweeps_are_refused_before_anything_starts(args, message, tmp_path, capsys):
    root = tmp_path / "sweep"
    code, _, err = _run(["--config", TINY, "--seeds", "0", "--workdir", str(root), *args], capsys)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1  # one line, no traceback
    assert not root.exists()


def test_no_seeds_and_a_wrong_get_sweep_are_named(tmp_path, capsys):
    code, _, err = _run(["--config", TINY, "--workdir", str(tmp_path / "s")], capsys)
    assert code == 2 and "has no seed; give --seeds (e.g. --seeds 0-4)" in err
    bad = tmp_path / "bad.py"
    bad.write_text(textwrap.dedent("""
        from fluxseg.train.config import base_config
        def get_config(arg=None):
            return base_config()
        def get_sweep(arg=None):
            return [{"pretrained": None, "seed": 0}] if arg == "none" else {"seed": 0}
    """))
    code, _, err = _run(["--config", str(bad), "--workdir", str(tmp_path / "s")], capsys)
    assert code == 2 and "must return a list of dicts" in err
    code, _, err = _run(["--config", f"{bad}:none", "--workdir", str(tmp_path / "s")], capsys)
    assert code == 2 and "get_sweep() sets pretrained=None, which reaches the run as " \
        "--config.pretrained=None and parses as 'None'" in err


def test_a_sweep_directory_serves_one_command(tmp_path, capsys):
    root = tmp_path / "s"
    os.makedirs(root)
    (root / "sweep.json").write_text('{"config": "experiments/default.py", "overrides": [], "runs": []}')
    code, _, err = _run(["--config", TINY, "--seeds", "0", "--workdir", str(root)], capsys)
    assert code == 2 and f"{root} holds a sweep of experiments/default.py" in err


@pytest.mark.parametrize("spec,runs,first,baseline", [
    ("experiments/ablation_fcn_init.py:shapes", 10, "transpose_init=bilinear/seed=0", "bilinear"),
    ("experiments/ablation_fcn_skips.py:shapes", 15, "variant=32s/seed=0", "32s"),
    ("experiments/ablation_unet_batchnorm.py", 10, "norm=batch/seed=0", "batch"),
])
def test_experiment_sweeps_are_the_whole_command(spec, runs, first, baseline, tmp_path, capsys):
    root = tmp_path / "s"
    code, out, _ = _run(["--config", os.path.join(REPO, spec), "--workdir", str(root), "--dry-run"], capsys)
    lines = out.splitlines()
    assert code == 0 and f"{runs} runs" in lines[0] and lines[1].split() == [first, "not", "started"]
    assert not root.exists()  # a dry run writes nothing
    from fluxseg.train.config import load_config_file
    doc = load_config_file(os.path.join(REPO, spec.split(":")[0])).__doc__
    assert f"fluxseg sweep --config {spec} --workdir" in doc  # the docstring gives the command
    planned = cli.expand(os.path.join(REPO, spec), [], None, [])
    assert len({r.variant for r in planned}) == runs // 5 and {r.seed for r in planned} == set(range(5))
    assert list(planned[0].overrides.values()) == [baseline]


def test_two_sweeps_never_run_in_one_directory(tmp_path, capsys):
    import fcntl

    root = tmp_path / "s"
    root.mkdir()
    with open(root / ".lock", "w") as held:  # a sweep running there
        fcntl.flock(held, fcntl.LOCK_EX)
        code, _, err = _run(["--config", TINY, "--seeds", "0", "--workdir", str(root)], capsys)
    assert code == 2 and f"another fluxseg sweep is running in {root}" in err
    assert not (root / "base").exists()  # no run started
