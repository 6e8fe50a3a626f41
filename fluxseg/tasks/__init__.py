"""Tasks: what a model's output means and how it is scored.

One object per task (fluxseg.tasks.segmentation, .classification) owns what
differs between them: the target, class ids, the binary rule, metric sums,
scores and the headline scores; the losses (fluxseg.tasks.losses) and metrics
(fluxseg.tasks.metrics, fluxseg.tasks.isbi) live beside them. The contract is
fluxseg.tasks.base.Task; a run's task is built by fluxseg.train.build.task.
"""
from __future__ import annotations

from fluxseg.tasks.base import Task, binary_target, class_ids, class_ids_from_probs
from fluxseg.tasks.classification import Classification
from fluxseg.tasks.segmentation import Segmentation

TASKS: dict[str, type[Task]] = {t.name: t for t in (Segmentation, Classification)}


def kind(name: str) -> type[Task]:
    """The task class called ``name``; an unknown name is an error listing the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}") from None


def create(name: str, num_classes: int, ignore_index: int, class_names=None, **options) -> Task:
    """The task ``name`` for a model with ``num_classes`` outputs (1 = a binary sigmoid head);
    ``options`` are the task's own fields (Segmentation's ``isbi_metrics``)."""
    names = tuple(str(n) for n in class_names) if class_names is not None else None
    return kind(name)(num_classes=int(num_classes), ignore_index=int(ignore_index),
                      class_names=names, **options)


__all__ = ["TASKS", "Classification", "Segmentation", "Task", "binary_target", "class_ids",
           "class_ids_from_probs", "create", "kind"]
