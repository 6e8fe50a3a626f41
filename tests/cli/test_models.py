"""`fluxseg models`: one row per registered model, as the registry describes it."""
from fluxseg import cli, models


def test_models_lists_every_registered_model_with_its_task_and_input(capsys):
    assert cli.main(["models"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [row.split()[0] for row in rows] == models.names()
    for row in rows:
        name, task, shape, *description = row.split()
        spec = models.spec(name)
        assert task == spec.task and shape == "x".join(map(str, spec.input_shape))
        assert " ".join(description) == spec.description
