"""`fluxseg summary`: Keras-style table and JSON totals."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fluxseg import cli


def run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_summary_json_counts_like_keras(capsys):
    code, out, _ = run(capsys, "summary", "hybrid_vgg16_resnet50", "--json")
    assert code == 0
    d = json.loads(out)
    assert (d["total"], d["trainable"], d["non_trainable"]) == (40_932_045, 26_164_237, 14_767_808)
    assert d["output_shape"] == [None, 10]


def test_summary_table_lists_layers_with_shapes_and_params(capsys):
    code, out, _ = run(capsys, "summary", "unet", "--input-shape", "188,188,1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == 'Model: "unet"'
    row = next(l for l in lines if l.startswith("down1_conv1 (Conv)"))
    assert "(None, 186, 186, 64)" in row and row.rstrip().endswith("640")
    head = next(l for l in lines if l.startswith("head (Conv)"))
    assert "(None, 4, 4, 2)" in head and head.rstrip().endswith("130")
    assert " Total params: 31,030,658" in out
    # each row's params add up to the total
    total = sum(int(l.split()[-1].replace(",", "")) for l in lines if "(" in l and l.split()[-1].replace(",", "").isdigit() and not l.startswith(" "))
    assert total == 31_030_658


def test_summary_options_and_bad_input(capsys):
    code, out, _ = run(capsys, "summary", "fcn_resnet18", "--json", "--input-shape", "352,512,3", "--set", "variant=8s", "--set", "num_classes=5")
    assert json.loads(out)["output_shape"] == [None, 352, 512, 5]
    code, _, err = run(capsys, "summary", "unet", "--input-shape", "570,570,1")
    assert code == 2 and "Nearest valid sizes: 556, 572" in err
    with pytest.raises(SystemExit):
        run(capsys, "summary", "unet", "--input-shape", "570x570")
    code, _, err = run(capsys, "summary", "nonet")
    assert code == 2 and "registered models" in err


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "fluxseg"
    out = subprocess.run([str(exe), "summary", "cnn_small", "--json"], capture_output=True, text=True, check=True,
                         timeout=300).stdout
    assert json.loads(out)["total"] == 3_453_121
