# %% [markdown]
# # Restore a run, predict images of odd sizes, look at the metrics
#
# A notebook in percent format (open it in Jupyter with jupytext, or run it
# as a script). It trains nothing: point it at a finished run,
#
#     FLUXSEG_WORKDIR=runs/default python experiments/notebook_restore_predict.py
#
# and it writes its figures to $FLUXSEG_NOTEBOOK_OUT (default
# <workdir>/notebook); in Jupyter they also show inline. `fluxseg.restore`
# needs neither TensorFlow nor torch; the cells from the dataset on load
# TensorFlow. One cell exports the run and reloads it with jax alone.

# %%
import os

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from PIL import Image  # noqa: E402

import fluxseg  # noqa: E402
from fluxseg.viz import draw  # noqa: E402



def show(fig):
    """The figure inline when this runs in Jupyter (Agg draws nothing on screen); no-op as a script."""
    try:
        get_ipython  # noqa: B018  defined only inside IPython
    except NameError:
        return
    import io

    from IPython.display import Image as Picture, display
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=80)  # as a picture: Agg registers no inline figure formatter
    display(Picture(data=png.getvalue()))


WORKDIR = os.environ.get("FLUXSEG_WORKDIR", "runs/default")
OUT = os.environ.get("FLUXSEG_NOTEBOOK_OUT") or os.path.join(WORKDIR, "notebook")
os.makedirs(OUT, exist_ok=True)

# %% [markdown]
# ## Restore on one device
# The newest checkpoint, its config, and the preprocessing the weights expect.

# %%
restored = fluxseg.restore(WORKDIR, device=jax.local_devices()[0])
print(f"{restored.config.model} at step {restored.step}, trained on "
      f"{restored.config.data.name} crops {tuple(restored.config.data.crop_size)}")

# %% [markdown]
# ## Images of sizes the model never saw
# Validation images resized to odd shapes (masks with nearest neighbours).
# `predict_batch` tiles each one with the training crop and gives back a mask
# of the image's own size; the model is compiled once for all of them.

# %%
from fluxseg import data  # noqa: E402  (TensorFlow from here on)

info = data.info(restored.config.data)
examples = data.full_size_iterator(restored.config.data, restored.config.data.eval_split)
sizes = [(45, 70), (97, 31), (61, 61)]
images, truths = [], []
for (h, w), ex in zip(sizes, examples):
    images.append(np.asarray(Image.fromarray(ex["image"]).resize((w, h), Image.BILINEAR)))
    truths.append(np.asarray(Image.fromarray(ex["mask"].astype(np.uint8)).resize((w, h), Image.NEAREST)))
masks = fluxseg.predict_batch(restored, images)
for im, m in zip(images, masks):
    assert m.shape == im.shape[:2]
print("mask sizes:", [m.shape for m in masks])

# %% [markdown]
# ## Image, truth, prediction, overlay

# %%
cmap, names, ignore = info.colormap, info.class_names, restored.config.data.ignore_index
fig, axes = plt.subplots(len(images), 4, figsize=(10, 2.6 * len(images)), squeeze=False)
for row, (im, t, m) in enumerate(zip(images, truths, masks)):
    panels = [im, draw.colorize(t, cmap, ignore), draw.colorize(m, cmap),
              draw.overlay(im, m, cmap)]
    for ax, panel, title in zip(axes[row], panels, ("image", "truth", "prediction", "overlay")):
        ax.imshow(panel, interpolation="nearest")
        ax.set_title(f"{title} {im.shape[0]}x{im.shape[1]}" if title == "image" else title)
        ax.axis("off")
shown = draw.legend_entries(truths, names, cmap, ignore, predictions=masks)
fig.legend(handles=[Patch(facecolor=np.array(c) / 255, edgecolor="k", label=n) for n, c in shown],
           loc="lower center", ncol=min(len(shown), 6), frameon=False)
fig.tight_layout(rect=(0, 0.06, 1, 1))
fig.savefig(os.path.join(OUT, "predictions.png"), dpi=80)
show(fig)
plt.close(fig)

# %% [markdown]
# ## Export and reload
# The run as a `jax.export` artifact (what `fluxseg export --format stablehlo`
# writes), reloaded with jax alone, as a consumer without fluxseg would, and
# compared with `fluxseg.predict`'s logits on a validation image at the
# dataset's own size (one tile: the same computation).

# %%
from jax import export as jax_export  # noqa: E402

from fluxseg import infer  # noqa: E402

export_dir = fluxseg.export(restored, "stablehlo", os.path.join(OUT, "export"))
with open(os.path.join(export_dir, "model.jaxexport"), "rb") as f:
    reloaded = jax_export.deserialize(bytearray(f.read()))
sample = next(examples)["image"]
exported = reloaded.call(sample[None])
reference = infer.predict_logits(restored, sample, tile=sample.shape[:2])
rel = float(np.max(np.abs(np.asarray(exported["logits"][0]) - reference)) / np.max(np.abs(reference)))
same = bool(np.array_equal(np.asarray(exported["class_ids"][0]), fluxseg.predict(restored, sample, tile=sample.shape[:2])))
print(f"export parity on {sample.shape[0]}x{sample.shape[1]}: logits within {rel:.1e} of predict's range, "
      f"class ids equal: {same}")

# %% [markdown]
# ## The metric table
# `fluxseg eval` in Python: every validation image once at its own size.

# %%
from fluxseg.infer.evaluation import evaluate  # noqa: E402

result = evaluate(WORKDIR, out_dir=os.path.join(OUT, "eval"), progress=False)
head = result["headline"]  # the task's leading scores
rows = [[n, "n/a" if np.isnan(result[f"IoU/{n}"]) else f"{100 * result[f'IoU/{n}']:.1f}",
         f"{result['support'][i]}"] for i, n in enumerate(result["class_names"])]
fig, ax = plt.subplots(figsize=(5, 0.6 + 0.3 * (len(rows) + 2)))
ax.axis("off")
ax.set_title(", ".join(f"{k} {100 * result[k]:.1f}" for k in head), fontsize=9)
table = ax.table(cellText=rows, colLabels=["class", "IoU (%)", "pixels"], loc="center")
table.scale(1, 1.2)
fig.tight_layout()
fig.savefig(os.path.join(OUT, "metrics.png"), dpi=100)
show(fig)
plt.close(fig)
print(open(result["files"][1]).read())
