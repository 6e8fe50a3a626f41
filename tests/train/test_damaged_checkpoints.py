"""A damaged newest checkpoint: `restore` names it and the intact steps; resuming falls back.

One tiny run (checkpoints at steps 2, 4, 6, saved asynchronously as a real run
saves them) serves every test: each damages a copy of its workdir the way a
failing disk, an interrupted copy or a killed process would.
"""
import json
import logging
import os
import shutil

import jax
import numpy as np
import pytest

from _helpers import REPO, run_python, tiny_config
from fluxseg import cli
from fluxseg.train import checkpoint, checksums, config as config_lib, loop
from fluxseg.train.checkpoint import CheckpointMismatchError, DamagedCheckpointError

RUN = dict(num_train_steps=6, checkpoint_every_steps=2, keep_last=3, keep_best=0,
           num_eval_images=0, async_checkpoints=True)


@pytest.fixture(scope="module")
def source(small_shapes_dir, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("damage") / "run")
    loop.train_and_evaluate(tiny_config(small_shapes_dir, **RUN), workdir)
    assert checkpoint.Checkpoints.reader(workdir).all_steps() == [2, 4, 6]
    return workdir


@pytest.fixture
def run(source, tmp_path):
    workdir = str(tmp_path / "run")
    shutil.copytree(source, workdir)
    return workdir


def _variables(workdir, step=None):
    r = checkpoint.restore(workdir, step)
    return jax.tree_util.tree_map(np.asarray, r.variables)


def _equal(a, b):
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def _files(workdir, step, item):
    root = os.path.join(workdir, "checkpoints", str(step), item)
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f != "commit_success.txt")


def _rewrite(path, fn):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    with open(path, "wb") as f:
        f.write(bytes(fn(data)))


def third_random(data):
    """A third of the file (its middle) overwritten with random bytes: a failing disk."""
    n = len(data)
    data[n // 3: n // 3 + max(n // 3, 1)] = np.random.default_rng(n).integers(0, 256, max(n // 3, 1), np.uint8).tobytes()
    return data


def truncated(data):
    """The file cut at two thirds: an interrupted copy."""
    return data[: 2 * len(data) // 3]


def one_bit(data):
    """One flipped bit in the middle of an array's stored bytes: loads silently as a wrong
    number unless the checksums are checked (Orbax does not notice)."""
    data[len(data) // 2] ^= 0x08
    return data


def damage(workdir, item, how, step=6):
    if how is one_bit:  # the largest file: array data, not Orbax's index
        files = [max(_files(workdir, step, item), key=os.path.getsize)]
    else:
        files = _files(workdir, step, item)
    for path in files:
        _rewrite(path, how)


CASES = {
    "variables-third": ("variables", third_random),  # the case
    "variables-truncated": ("variables", truncated),
    "variables-one-bit": ("variables", one_bit),
    "meta-third": ("meta", third_random),
    "opt-third": ("opt", third_random),
}


def test_every_save_leaves_a_checksum_list_that_matches(source):
    for step in (2, 4, 6):
        step_dir = os.path.join(source, "checkpoints", str(step))
        assert checksums.problems(step_dir, checkpoint.ITEMS) == []
        with open(os.path.join(step_dir, checksums.FILE)) as f:
            listed = {p.split("/")[0] for p in json.load(f)["files"]}
        assert listed == set(checkpoint.ITEMS)


@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith("opt")])
def test_restore_names_the_damaged_step_its_path_and_the_intact_steps(run, source, case):
    damage(run, *CASES[case])
    with pytest.raises(DamagedCheckpointError) as info:
        checkpoint.restore(run)
    err, path = info.value, os.path.join(os.path.abspath(run), "checkpoints", "6")
    assert isinstance(err, OSError) and err.step == 6 and err.path == path and err.intact == (4, 2)
    text = str(err)
    assert f"checkpoint step 6 of {run} is damaged: {path} could not be read (" in text
    assert "Intact steps, newest first: 4, 2" in text and f"fluxseg.restore({run!r}, step=4)" in text
    if case == "variables-one-bit":
        assert "differs from what was written (CRC-32)" in text
    _equal(_variables(run, 4), _variables(source, 4))
    with pytest.raises(DamagedCheckpointError, match="step 6"):
        loop.evaluate(None, run)


def test_restore_needs_no_optimiser_state(run, source):
    damage(run, *CASES["opt-third"])
    _equal(_variables(run), _variables(source))


def test_a_run_saved_without_checksum_lists_still_gets_the_message(run):
    for step in (2, 4, 6):
        os.remove(os.path.join(run, "checkpoints", str(step), checksums.FILE))
    damage(run, *CASES["variables-third"])
    with pytest.raises(DamagedCheckpointError, match=r"step 6 .* damaged.*Intact steps, newest first: 4, 2"):
        checkpoint.restore(run)


def test_no_readable_step_is_said(run):
    for step in (2, 4, 6):
        damage(run, "variables", truncated, step)
    with pytest.raises(DamagedCheckpointError, match="No other step of the run could be read either") as info:
        checkpoint.restore(run)
    assert info.value.intact == () and "fails the same way" not in str(info.value)  # the lists show damage


def test_a_checkpoint_whose_files_are_intact_but_do_not_fit_is_a_mismatch(run, monkeypatch):
    saved_config = config_lib.saved_config

    def wider(saved):  # the model's code "changed" since the run: twice the channels
        c = saved_config(saved)
        c.model_kwargs.features = 8
        return c

    monkeypatch.setattr(config_lib, "saved_config", wider)
    with pytest.raises(CheckpointMismatchError, match=r"step 6 .* is intact \(its files match their checksums\)"):
        checkpoint.restore(run)
    # Without checksum lists (runs saved before them) it can only be inferred: every step fails alike.
    for step in (2, 4, 6):
        os.remove(os.path.join(run, "checkpoints", str(step), checksums.FILE))
    with pytest.raises(DamagedCheckpointError, match="Every step fails the same way, which points to a run "
                                                     "that no longer fits today's code"):
        checkpoint.restore(run)


@pytest.mark.parametrize("case", ["variables-third", "variables-truncated", "meta-third", "opt-third"])
def test_resume_falls_back_to_the_newest_intact_step_and_moves_the_damaged_one_aside(
        run, source, small_shapes_dir, case, caplog):
    damage(run, *CASES[case])
    damaged_files = sorted(os.listdir(os.path.join(run, "checkpoints", "6", CASES[case][0])))
    with caplog.at_level(logging.WARNING, logger="fluxseg.train"):
        result = loop.train_and_evaluate(tiny_config(small_shapes_dir, **RUN), run)
    aside = os.path.join(os.path.abspath(run), "damaged_checkpoints", "6")
    warned = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(warned) == 1 and f"moved to {aside}" in warned[0] and "Resuming from step 4" in warned[0]
    assert sorted(os.listdir(os.path.join(aside, CASES[case][0]))) == damaged_files  # kept, not deleted
    # Steps 5-6 were trained again from step 4 and step 6 saved anew: exactly the lost checkpoint.
    assert result["step"] == 6
    assert checkpoint.Checkpoints.reader(run).all_steps() == [2, 4, 6]
    _equal(_variables(run), _variables(source))


def test_resume_damaged_error_stops_with_the_restore_message(run, small_shapes_dir):
    damage(run, *CASES["variables-third"])
    config = tiny_config(small_shapes_dir, resume_damaged="error", **RUN)
    with pytest.raises(DamagedCheckpointError, match=r"(?s)step 6 .*damaged.*Intact steps, newest first: 4, 2"
                                                     r".*resume_damaged='error'") as info:
        loop.train_and_evaluate(config, run)
    assert info.value.intact == (4, 2)
    assert not os.path.exists(os.path.join(run, "damaged_checkpoints"))
    assert os.path.isdir(os.path.join(run, "checkpoints", "6"))


def test_resume_never_starts_over_when_no_step_can_be_read(run, small_shapes_dir):
    for step in (2, 4, 6):
        damage(run, "opt", truncated, step)
    with pytest.raises(DamagedCheckpointError, match="no checkpoint of .* can be read.*Nothing was moved or deleted"):
        loop.train_and_evaluate(tiny_config(small_shapes_dir, **RUN), run)
    assert sorted(os.listdir(os.path.join(run, "checkpoints"))) == ["2", "4", "6"]


def test_a_save_killed_mid_write_is_ignored_by_restore_and_resume(run, source, small_shapes_dir, caplog):
    # Resume to step 8 in a fresh process that is SIGKILLed while Orbax finishes step 8's save
    # (after its items are written, before the directory gets its final name).
    proc = run_python([os.path.join(REPO, "tests", "train", "_kill_mid_save.py"), small_shapes_dir, run, "8"], check=False)
    assert proc.returncode == -9, proc.stderr[-3000:]
    names = sorted(os.listdir(os.path.join(run, "checkpoints")))
    assert names[:3] == ["2", "4", "6"] and names[3].startswith("8.orbax-checkpoint-tmp"), names
    with caplog.at_level(logging.WARNING, logger="fluxseg.train"):
        restored = checkpoint.restore(run)
    assert restored.step == 6
    assert any("step 8 was never finished" in r.getMessage() for r in caplog.records)
    _equal(restored.variables, _variables(source))
    result = loop.train_and_evaluate(tiny_config(small_shapes_dir, **dict(RUN, num_train_steps=8)), run)
    assert result["step"] == 8 and checkpoint.restore(run).step == 8
    assert not any(n.startswith("8.") for n in os.listdir(os.path.join(run, "checkpoints")))


def test_the_commands_end_with_the_one_message(run, small_shapes_dir, capsys):
    damage(run, *CASES["variables-third"])
    for argv in (["eval", "--workdir", run, "--no-progress"], ["predict", "--workdir", run, "x.png"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert f"fluxseg {argv[0]}: error: checkpoint step 6 of {run} is damaged" in err
        assert "Traceback" not in err and "Exception ignored" not in err
    experiment = os.path.join(os.path.dirname(run), "tiny.py")
    with open(experiment, "w") as f:  # the run's own config as an experiment file
        f.write("import sys\n"
                f"sys.path.insert(0, {os.path.join(REPO, 'tests')!r})\n"
                "from _helpers import tiny_config\n\n\n"
                f"def get_config():\n    return tiny_config({small_shapes_dir!r}, **{RUN!r})\n")
    proc = run_python(["launch.py", "--config", experiment, "--workdir", run,
                       "--config.resume_damaged=error"], check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"fluxseg: stopped: checkpoint step 6 of {run} is damaged" in proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
