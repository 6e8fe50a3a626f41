"""experiments/notebook_restore_predict.py runs as a script on a tiny run; restore needs no TF/torch."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from _helpers import REPO, run_python

NOTEBOOK = os.path.join(REPO, "experiments", "notebook_restore_predict.py")


def test_notebook_restores_predicts_and_plots(tiny_run, tmp_path):
    out = tmp_path / "nb"
    proc = run_python([NOTEBOOK], env={"FLUXSEG_WORKDIR": tiny_run, "FLUXSEG_NOTEBOOK_OUT": str(out)})
    assert "mask sizes: [(45, 70), (97, 31), (61, 61)]" in proc.stdout
    assert "| background |" in proc.stdout  # the metric table, per class
    for name in ("predictions.png", "metrics.png"):
        w, h = Image.open(out / name).size
        assert w >= 400 and h >= 200, name
    with open(out / "eval" / "metrics.json") as f:
        result = json.load(f)
    assert result["num_examples"] == 18
    # mIoU recomputed from the confusion matrix: classes in neither truth nor prediction left out.
    cm = np.array(result["confusion"], np.float64)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    assert result["mIoU"] == pytest.approx(np.mean(np.diag(cm)[union > 0] / union[union > 0]), rel=1e-9)


def test_restore_and_predict_load_neither_tensorflow_nor_torch(tiny_run):
    code = (
        "import sys, numpy as np, fluxseg\n"
        f"r = fluxseg.restore({tiny_run!r})\n"
        "m = fluxseg.predict(r, np.zeros((37, 51, 3), np.uint8))\n"
        "assert m.shape == (37, 51), m.shape\n"
        "heavy = sorted(k for k in sys.modules if k.split('.')[0] in ('tensorflow', 'torch', 'keras'))\n"
        "assert not heavy, heavy[:5]\n"
        "print('clean')\n")
    assert run_python(["-c", code]).stdout.strip().endswith("clean")


def test_notebook_runs_in_a_jupyter_kernel(tiny_run, tmp_path, monkeypatch):
    """The percent-format source converted by jupytext and executed by nbclient in a real ipykernel."""
    import re

    import jupytext
    import nbclient

    out = tmp_path / "nb"
    monkeypatch.setenv("FLUXSEG_WORKDIR", tiny_run)  # the kernel inherits this process's environment
    monkeypatch.setenv("FLUXSEG_NOTEBOOK_OUT", str(out))
    monkeypatch.setenv("PYTHONPATH", REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    notebook = jupytext.read(NOTEBOOK)
    assert sum(c.cell_type == "code" for c in notebook.cells) >= 5
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream" and o.name == "stdout")
    assert re.search(r"unet at step 2, trained on fluxseg_shapes crops \(32, 32\)", text)
    assert "mask sizes: [(45, 70), (97, 31), (61, 61)]" in text
    parity = re.search(r"export parity on 32x32: logits within (\S+) of predict's range, class ids equal: (\w+)", text)
    assert parity and float(parity.group(1)) <= 1e-4 and parity.group(2) == "True", text[-2000:]
    assert "| background |" in text
    pictures = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
                if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(pictures) == 2  # the predictions and the metric table, inline
    assert (out / "export" / "model.jaxexport").exists()
