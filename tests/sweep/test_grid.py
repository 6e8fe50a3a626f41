"""Grid expansion, the product/zip helpers, seeds, and the names of runs."""
import pytest

from fluxseg.sweep import grid, runs


def test_product_varies_the_first_sweep_slowest_and_zip_pairs():
    out = grid.product(grid.sweep("config.optim.learning_rate", [1e-3, 3e-3]),
                       grid.sweep("model_kwargs.variant", ["32s", "8s"]))
    assert out == [{"optim.learning_rate": 1e-3, "model_kwargs.variant": "32s"},
                   {"optim.learning_rate": 1e-3, "model_kwargs.variant": "8s"},
                   {"optim.learning_rate": 3e-3, "model_kwargs.variant": "32s"},
                   {"optim.learning_rate": 3e-3, "model_kwargs.variant": "8s"}]
    zipped = grid.zip(grid.sweep("a", [1, 2]), grid.sweep("b", ["x", "y"]))
    assert zipped == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    # Zips inside products: (lr, warmup) pairs for each seed.
    nested = grid.product(zipped, grid.sweep("seed", [0, 1]))
    assert len(nested) == 4 and nested[1] == {"a": 1, "b": "x", "seed": 1}


def test_helpers_reject_what_would_be_ambiguous():
    with pytest.raises(ValueError, match="one length"):
        grid.zip(grid.sweep("a", [1, 2]), grid.sweep("b", [1]))
    with pytest.raises(ValueError, match="sets 'a' twice"):
        grid.product(grid.sweep("a", [1]), grid.sweep("config.a", [2]))


def test_grid_flags_split_on_top_level_commas_only():
    assert grid.parse_grid("optim.learning_rate=1e-3,3e-3") == [
        {"optim.learning_rate": "1e-3"}, {"optim.learning_rate": "3e-3"}]
    assert grid.parse_grid("data.crop_size=(32, 32),(64,64)") == [
        {"data.crop_size": "(32, 32)"}, {"data.crop_size": "(64,64)"}]
    assert grid.split_values("'a,b',c") == ["'a,b'", "c"]
    for bad in ("noequals", "=1,2", "a=1,,2"):
        with pytest.raises(ValueError):
            grid.parse_grid(bad)


def test_seeds():
    assert grid.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert grid.parse_seeds("0-2,9") == [0, 1, 2, 9]
    for bad in ("4-0", "a", "1,1", "-3"):
        with pytest.raises(ValueError, match="--seeds"):
            grid.parse_seeds(bad)
    # --seeds replaces the seeds an experiment's sweep sets; None keeps them.
    own = grid.product(grid.sweep("a", [1, 2]), grid.sweep("seed", [5, 6, 7]))
    assert grid.with_seeds(own, None) == own
    assert grid.with_seeds(own, [0, 1]) == [{"a": 1, "seed": 0}, {"a": 1, "seed": 1},
                                            {"a": 2, "seed": 0}, {"a": 2, "seed": 1}]


def test_run_names_use_the_shortest_unambiguous_key():
    entries = grid.product(grid.sweep("model_kwargs.variant", ["32s", "8s"]),
                           grid.sweep("optim.learning_rate", ["1e-3"]),
                           grid.sweep("data.crop_size", ["(32, 32)"]), grid.sweep("seed", [0, 1]))
    table = runs.plan(entries)
    assert [r.path for r in table[:2]] == ["variant=32s,learning_rate=1e-3,crop_size=32_32/seed=0",
                                           "variant=32s,learning_rate=1e-3,crop_size=32_32/seed=1"]
    assert table[0].config_args() == ["--config.seed=0", "--config.model_kwargs.variant=32s",
                                      "--config.optim.learning_rate=1e-3",
                                      "--config.data.crop_size=(32, 32)"]
    assert runs.variants(table)[1][0] == "variant=8s,learning_rate=1e-3,crop_size=32_32"
    # Two keys ending alike keep enough of their path to differ.
    assert grid.short_keys(["optim.name", "data.name", "seed2"]) == {
        "optim.name": "optim.name", "data.name": "data.name", "seed2": "seed2"}
    # No overrides at all: one variant called 'base'.
    assert runs.plan([{"seed": 3}])[0].path == "base/seed=3"


def test_plan_rejects_missing_seeds_repeats_and_name_clashes():
    with pytest.raises(ValueError, match="no seed"):
        runs.plan([{"a": "1"}])
    with pytest.raises(ValueError, match="twice"):
        runs.plan([{"a": "1", "seed": 0}, {"a": "1", "seed": 0}])
    with pytest.raises(ValueError, match="share the directory"):
        runs.plan([{"a": "x/y", "seed": 0}, {"a": "x y", "seed": 0}])


def test_python_values_reach_the_run_as_text_that_parses_back():
    from fluxseg.cli.train import config_from_args

    values = {"optim.learning_rate": 3e-4, "data.crop_size": (48, 64), "data.hflip": False,
              "num_train_steps": 7, "model_kwargs.padding": "valid"}
    args = [f"--config.{k}={v if isinstance(v, str) else grid.value_text(v)}" for k, v in values.items()]
    c = config_from_args("experiments/default.py", args)
    assert c.optim.learning_rate == 3e-4 and c.data.crop_size == (48, 64)
    assert c.data.hflip is False and c.num_train_steps == 7 and c.model_kwargs.padding == "valid"
