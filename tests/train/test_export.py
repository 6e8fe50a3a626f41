"""fluxseg.export: each format of three tiny trained runs equals fluxseg.predict's model outputs.

Runs: conftest's tiny_run (a width-4 padded U-Net: convs, max pool, transposed
convs, concatenation), a width-4 ResNet-18 classifier (BatchNorm in eval mode,
strided convs with explicit padding, max pool, global pooling, Dense) and the
unpadded U-Net (valid convs, centre crops). References come from
fluxseg.predict / predict_logits on the same images, at several sizes and
batch sizes; the artifacts run in a process that imports neither fluxseg nor flax.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from _helpers import REPO, run_python, tiny_config
from _reference import shared_root

FORMATS = ("stablehlo", "savedmodel", "onnx")
# |artifact - reference| / max |reference| over the logits (issue 22: <= 1e-4 relative).
TOL = 1e-4
# The segmentation run is conftest's tiny_run (a width-4 padded U-Net); these two are trained here.
RUNS = {
    "cls": dict(model="resnet18", model_kwargs={"width": 4},
                **{"data.task": "classification"}),
    "valid": dict(model_kwargs={"features": 4, "padding": "valid"}, num_classes=2,
                  **{"data.binary": True, "data.scale_range": (6.0, 6.0), "data.crop_size": (188, 188),
                     "data.eval_mode": "resize", "data.eval_size": (188, 188), "batch_size": 2}),
}
NAMES = ("seg", *RUNS)
# Image sides per run: for the unpadded U-Net these are output sides (the artifact gets them
# mirror-padded by 92, as predict's overlap-tile does).
SIDES = {"seg": [(32, 32), (48, 64), (16, 80)], "cls": [(32, 32), (40, 24)], "valid": [(4, 4), (20, 36)]}


def _once(root, name, make):
    """``make(path)`` once per test session, shared by the xdist workers (file lock + marker)."""
    from filelock import FileLock

    path = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not (root / f"{name}.done").exists():
            make(path)
            (root / f"{name}.done").write_text("done")
    return path


@pytest.fixture(scope="module")
def shared(tmp_path_factory, worker_id):
    # This session's xdist workers share it; no other session does (an export of
    # older code must never be found and reused).
    return shared_root(tmp_path_factory, worker_id, "export")


@pytest.fixture(scope="module")
def runs(tiny_run, small_shapes_dir, shared):
    from fluxseg.train import loop

    def train(overrides):
        config = tiny_config(small_shapes_dir, num_train_steps=2, checkpoint_every_steps=2,
                             num_eval_images=0, **overrides)
        return lambda path: loop.train_and_evaluate(config, str(path))

    return {"seg": tiny_run, **{name: str(_once(shared, f"export_run_{name}", train(overrides)))
                                for name, overrides in RUNS.items()}}


@pytest.fixture(scope="module")
def exports(runs, shared):
    import fluxseg

    def make(root):
        for name, workdir in runs.items():
            restored = fluxseg.restore(workdir)
            for fmt in FORMATS:
                # The export's own check (model.json) is tested once, on the ONNX files.
                fluxseg.export(restored, fmt, str(root / f"{name}_{fmt}"), verify=fmt == "onnx")

    root = _once(shared, "exports", make)
    return {(name, fmt): str(root / f"{name}_{fmt}") for name in NAMES for fmt in FORMATS}


def _images(shape, n, seed):
    return np.random.RandomState(seed).randint(0, 256, (n, *shape, 3)).astype(np.uint8)


def _references(name, workdir):
    """{(sides, n): (artifact input, reference logits, ids, probs)} from fluxseg.predict."""
    import jax
    import jax.numpy as jnp

    import fluxseg
    from fluxseg import infer

    r = fluxseg.restore(workdir)
    out = {}
    for i, (h, w) in enumerate(SIDES[name]):
        for n in (1, 3):
            images = _images((h, w), n, seed=10 * i + n)
            if name == "cls":
                x = r.preprocess(jnp.asarray(images, jnp.float32))
                logits = np.asarray(jax.jit(lambda v, x: r.model.apply(v, x, train=False))(r.variables, x))
                inputs = images
                if (h, w) == tuple(r.config.data.crop_size):  # predict resizes to the training size
                    probs = np.stack([fluxseg.predict(r, im, probs=True) for im in images])
                    ids = np.array([fluxseg.predict(r, im) for im in images])
                else:
                    probs = ids = None
            else:
                margin = 92 if name == "valid" else 0
                tile = (h + 2 * margin, w + 2 * margin)
                logits = np.stack([infer.predict_logits(r, im, tile=tile) for im in images])
                probs = np.stack([fluxseg.predict(r, im, probs=True, tile=tile) for im in images])
                ids = np.stack([fluxseg.predict(r, im, tile=tile) for im in images])
                inputs = np.stack([infer.mirror_pad(im, margin, margin, margin, margin) for im in images])
            out[(h, w), n] = (inputs, logits, ids, probs)
    return out


CONSUMER = r"""
import json, sys
import numpy as np
fmt, cases, out = sys.argv[1], sys.argv[2], sys.argv[3]
directories = sys.argv[4:]


def runner(directory):
    if fmt == "stablehlo":
        from jax import export
        exported = export.deserialize(bytearray(open(directory + "/model.jaxexport", "rb").read()))
        return lambda x: {k: np.asarray(v) for k, v in exported.call(x).items()}
    if fmt == "savedmodel":
        import tensorflow as tf
        serve = tf.saved_model.load(directory + "/saved_model").signatures["serving_default"]
        return lambda x: {k: v.numpy() for k, v in serve(images=tf.constant(x)).items()}
    import onnxruntime as ort
    session = ort.InferenceSession(directory + "/model.onnx", providers=["CPUExecutionProvider"])
    return lambda x: dict(zip(("logits", "probs", "class_ids"), session.run(None, {"images": x})))


outs, errors = {}, {}
for directory in directories:
    name = directory.rsplit("/", 1)[1].split("_")[0]
    data = np.load(cases.format(name))
    run = runner(directory)
    for key in data.files:
        for k, v in run(data[key]).items():
            outs[name + "/" + key + "/" + k] = v
    try:
        run(data[data.files[0]][:, 1:])  # one row fewer
        errors[name] = "no error"
    except Exception as e:
        errors[name] = (type(e).__name__ + ": " + str(e))[:3000]
np.savez(out, **outs)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("fluxseg", "flax", "torch"))
print(json.dumps({"imported": heavy, "bad_size_error": errors}))
"""


@pytest.fixture(scope="module")
def references(runs, shared):
    def make(root):
        root.mkdir()
        for name in NAMES:
            refs = _references(name, runs[name])
            np.savez(root / f"{name}.npz", **{f"{h}x{w}_n{n}/{part}": value
                                              for ((h, w), n), parts in refs.items()
                                              for part, value in zip(("inputs", "logits", "ids", "probs"), parts)
                                              if value is not None})
            np.savez(root / f"{name}_inputs.npz", **{f"{h}x{w}_n{n}": parts[0]
                                                     for ((h, w), n), parts in refs.items()})
    return _once(shared, "export_references", make)


@pytest.fixture(scope="module")
def consumed(exports, references, shared):
    """Each format's artifacts run by its own runtime in a fresh process (no fluxseg, no flax)."""
    def make(root):
        root.mkdir()
        script = root / "consumer.py"
        script.write_text(CONSUMER)
        for fmt in FORMATS:
            env = dict(os.environ, PYTHONPATH="")  # the artifacts alone, not the repository
            proc = subprocess.run([sys.executable, str(script), fmt, str(references / "{}_inputs.npz"),
                                   str(root / f"{fmt}.npz"), *(exports[n, fmt] for n in NAMES)],
                                  capture_output=True, text=True, env=env, cwd=str(root), timeout=600)
            assert proc.returncode == 0, proc.stderr[-3000:]
            (root / f"{fmt}.json").write_text(proc.stdout.strip().splitlines()[-1])

    root = _once(shared, "export_consumed", make)
    return {fmt: (dict(np.load(root / f"{fmt}.npz")), json.loads((root / f"{fmt}.json").read_text()))
            for fmt in FORMATS}


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / max(np.max(np.abs(b)), 1e-12))


def _untied(logits, margin):
    """Pixels whose two largest logits differ by more than ``margin`` (the binary head: |logit| > margin)."""
    if logits.shape[-1] == 1:
        return np.abs(logits[..., 0]) > margin
    top = np.sort(logits, axis=-1)
    return top[..., -1] - top[..., -2] > margin


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("run", NAMES)
def test_artifact_equals_predict(consumed, references, run, fmt):
    outs, report = consumed[fmt]
    assert report["imported"] == []  # neither fluxseg nor flax (nor torch) in the consumer
    refs = dict(np.load(references / f"{run}.npz"))
    cases = sorted({k.split("/")[0] for k in refs})
    assert len(cases) == 2 * len(SIDES[run])  # every size, batches of 1 and 3
    for key in cases:
        logits, got = refs[f"{key}/logits"], outs[f"{run}/{key}/logits"]
        assert got.shape == logits.shape, (key, got.shape, logits.shape)
        assert _rel(got, logits) <= TOL, (key, _rel(got, logits))
        if f"{key}/probs" in refs:
            assert _rel(outs[f"{run}/{key}/probs"], refs[f"{key}/probs"]) <= TOL, key
            keep = _untied(logits, TOL * np.max(np.abs(logits)) * 4)
            assert keep.mean() > 0.9, key  # the comparison covers (nearly) every pixel
            np.testing.assert_array_equal(outs[f"{run}/{key}/class_ids"][keep], refs[f"{key}/ids"][keep],
                                          err_msg=key)


# What each runtime says when fed a side the model cannot take (the first case with one row
# fewer): jax's shape assertion, the SavedModel's own check, and the ONNX node named after the rule.
BAD_SIZE = {
    ("seg", "stablehlo"): "Division had remainder", ("seg", "savedmodel"): "must be multiples of 16",
    ("seg", "onnx"): "fluxseg_input_height_must_be_16*k_with_k_at_least_1",
    ("valid", "stablehlo"): "Division had remainder", ("valid", "savedmodel"): "must be 16*k + 172",
    ("valid", "onnx"): "fluxseg_input_height_must_be_16*k+172",
}


@pytest.mark.parametrize("key", list(BAD_SIZE))
def test_a_side_the_model_cannot_take_is_a_clear_error(consumed, key):
    run, fmt = key
    assert BAD_SIZE[key] in consumed[fmt][1]["bad_size_error"][run]


def test_classifier_takes_any_side_and_ships_its_metadata(exports, runs):
    with open(os.path.join(exports["cls", "onnx"], "model.json")) as f:
        meta = json.load(f)
    assert meta["input"]["height"]["rule"] == "any side >= 1" and meta["input"]["batch"] is None
    assert len(meta["classes"]) == meta["num_logits"] and meta["task"] == "classification"
    assert meta["preprocessing"] == {"name": "unit", "included": True,
                                     "what": "RGB [0,255] -> [0,1]; for models trained from scratch."}
    check = meta["parity_check"]
    assert check["logits_max_rel_diff"] <= TOL and check["class_ids_equal"] == 1.0
    with open(os.path.join(exports["valid", "stablehlo"], "model.json")) as f:
        valid = json.load(f)
    assert valid["input"]["height"]["rule"].startswith("16*k + 172 for k >= 1 (188, 204, 220")
    assert valid["outputs"]["logits"]["shape"] == ["b", "16*h - 12", "16*w - 12", "2"]


@pytest.mark.parametrize("run", NAMES)
def test_the_onnx_graph_runs_the_model_once(exports, runs, run):
    # Each output used to be traced from its own call of the serving function: three
    # copies of the network in the graph, which onnxruntime ran three times over.
    import jax
    import jax.numpy as jnp
    import onnx

    import fluxseg
    from fluxseg.infer.export.common import plain_forms

    r = fluxseg.restore(runs[run])
    side = (188, 188) if run == "valid" else (32, 32)
    with plain_forms():  # the op forms the export traces with
        jaxpr = jax.make_jaxpr(lambda x: r.model.apply(r.variables, x, train=False))(
            jnp.zeros((1, *side, 3), jnp.float32))

    def convs(jx):
        n = 0
        for eqn in jx.eqns:
            n += eqn.primitive.name == "conv_general_dilated"
            for v in eqn.params.values():
                inner = getattr(v, "jaxpr", None)
                if inner is not None and hasattr(inner, "eqns"):
                    n += convs(inner)
        return n

    graph = onnx.load(os.path.join(exports[run, "onnx"], "model.onnx")).graph
    assert convs(jaxpr.jaxpr) > 0
    assert sum(node.op_type == "Conv" for node in graph.node) == convs(jaxpr.jaxpr)


def test_the_loader_beside_the_artifact_checks_sizes_first(exports):
    code = ("import sys, numpy as np\n"
            f"sys.path.insert(0, {exports['valid', 'onnx']!r})\n"
            "import fluxseg_loader\n"
            f"predict = fluxseg_loader.load({exports['valid', 'onnx']!r})\n"
            "out = predict(np.zeros((2, 204, 188, 3), np.uint8))\n"
            "print(out['logits'].shape, out['class_ids'].dtype)\n"
            "try:\n    predict(np.zeros((1, 200, 188, 3), np.uint8))\nexcept ValueError as e:\n    print(e)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fluxseg', 'flax')))\n")
    lines = run_python(["-c", code], env={"PYTHONPATH": ""}).stdout.strip().splitlines()
    assert lines[0] == "(2, 20, 4, 2) int32"
    assert lines[1] == ("image height 200 is not one the model takes (16*k + 172 for k >= 1 "
                        "(188, 204, 220, ...)); nearest: 188, 204")
    assert lines[2] == "[]"


def test_bfloat16_run_exports_in_float32_unless_asked(runs, tmp_path):
    import jax.numpy as jnp
    import ml_collections

    import fluxseg
    from fluxseg.infer.export import loader
    from fluxseg.train import build

    r = fluxseg.restore(runs["seg"])
    f32 = r.model
    config = ml_collections.ConfigDict(r.config.to_dict())
    config.dtype = "bfloat16"  # what a bfloat16 run saves: float32 parameters, bf16 compute
    r.config, r.model = config, build.model(config)
    images = _images((32, 48), 2, seed=5)
    x = r.preprocess(jnp.asarray(images, jnp.float32))
    want32 = np.asarray(f32.apply(r.variables, x, train=False))
    want16 = np.asarray(r.model.apply(r.variables, x, train=False).astype(jnp.float32))
    assert _rel(want16, want32) > 10 * TOL  # bf16 compute is visibly different
    got32 = loader.load(fluxseg.export(r, "stablehlo", str(tmp_path / "f32"), verify=False))(images)
    got16 = loader.load(fluxseg.export(r, "stablehlo", str(tmp_path / "bf16"), dtype="bfloat16",
                                       verify=False))(images)
    assert _rel(got32["logits"], want32) <= TOL
    assert _rel(got16["logits"], want16) <= 1e-2 and _rel(got16["logits"], want32) > 10 * TOL
    assert loader.load(str(tmp_path / "f32")).metadata["trained_dtype"] == "bfloat16"


def _cli(args, tmp_path):
    return subprocess.run([sys.executable, "-m", "fluxseg.cli", "export", *args], capture_output=True,
                          text=True, cwd=str(tmp_path), timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", "")))


def test_cli_exports_and_reports_parity(runs, tmp_path):
    proc = _cli(["--workdir", runs["valid"], "--format", "onnx", "--out", str(tmp_path / "o"),
                 "--batch", "2", "--size", "204,188"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "input 2, 204, 188, 3 uint8" in proc.stdout and "of JAX on [2, 204, 188, 3] images" in proc.stdout
    with open(tmp_path / "o" / "model.json") as f:
        meta = json.load(f)
    assert meta["input"]["batch"] == 2 and meta["outputs"]["class_ids"]["shape"] == ["2", "20", "4"]


@pytest.mark.parametrize("args, message", [
    (["--format", "onnx", "--size", "190,188"],
     "fluxseg export: error: unet cannot take 190x188 images: 190 is not a valid input size for the "
     "unpadded U-Net (depth 4): every map before a 2x2 pooling must be even. Nearest valid sizes: 188, 204."),
    (["--format", "tflite"], "argument --format: invalid choice: 'tflite'"),
    (["--format", "onnx", "--size", "18"], "expected H,W as two positive integers"),
])
def test_cli_bad_input_is_one_line(runs, tmp_path, args, message):
    proc = _cli(["--workdir", runs["valid"], "--out", str(tmp_path / "x"), *args], tmp_path)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-2000:]
    assert len([l for l in proc.stderr.splitlines() if "error:" in l]) == 1


def test_cli_without_checkpoints_names_the_problem(tmp_path):
    proc = _cli(["--workdir", str(tmp_path / "empty"), "--format", "stablehlo", "--out", str(tmp_path / "x")],
                tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"fluxseg export: error: no checkpoint in {tmp_path / 'empty' / 'checkpoints'}; train first with "
        f"`python launch.py --workdir {tmp_path / 'empty'}`"]


def test_unknown_format_and_missing_package_name_the_fix(runs, monkeypatch, tmp_path):
    import fluxseg
    from fluxseg.infer.export import ExportError

    r = fluxseg.restore(runs["seg"])
    with pytest.raises(ExportError, match=r"unknown export format 'tflite'; choose from: stablehlo, "
                                          r"savedmodel, onnx"):
        fluxseg.export(r, "tflite", str(tmp_path))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an uninstalled package looks like
    with pytest.raises(ExportError) as e:
        fluxseg.export(r, "onnx", str(tmp_path / "o"))
    assert str(e.value) == ("the onnx export needs the onnxruntime package, which is not installed; "
                            "install the export extra: pip install 'fluxseg[export]'")
