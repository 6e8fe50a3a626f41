"""One drawing path: colours in RGB order, titles and a legend of the classes shown."""
import numpy as np

from fluxseg.viz import draw
from fluxseg.viz.draw import prediction_grid

CMAP = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25]], np.uint8)
NAMES = ("background", "circle", "square", "triangle")


def test_training_grid_has_titles_panels_in_dataset_colours_and_a_legend():
    images = np.full((2, 32, 32, 3), 128, np.uint8)
    masks = np.zeros((2, 32, 32), np.int32)
    masks[:, 4:12, 4:12] = 1
    masks[1, 0, :] = 255
    preds = masks.copy()
    preds[:, 4:12, 4:12] = 2
    preds[1, 0, :] = 0
    grid = prediction_grid(images, masks, preds, CMAP, 255, class_names=NAMES)
    assert grid.dtype == np.uint8 and grid.shape[2] == 3
    # Titles above, panels enlarged x4 to 128 px, then a legend: taller than two rows.
    assert grid.shape[0] > 2 * 128 + 19 + 10
    colours = {tuple(c) for c in grid.reshape(-1, 3)}
    assert (230, 25, 75) in colours and (60, 180, 75) in colours  # truth circle, predicted square
    assert (255, 225, 25) not in colours  # triangle absent: neither drawn nor in the legend
    legend = grid[-20:]
    legend_colours = {tuple(c) for c in legend.reshape(-1, 3)}
    assert {(0, 0, 0), (230, 25, 75), (60, 180, 75)} <= legend_colours
    # The prediction panel (third column) shows class 2 where the model said so, in RGB order.
    title_h = draw.TITLE_PX + 6
    row = grid[title_h + 4 * 8 + 2]
    assert any(tuple(px) == (60, 180, 75) for px in row[2 * (128 + 4):])


def test_overlay_blends_only_labelled_pixels():
    image = np.full((4, 5, 3), 100, np.uint8)
    mask = np.array([[1] * 5, [0] * 5, [255] * 5, [3] * 5])
    out = draw.overlay(image, mask, CMAP, 255, alpha=0.5)
    np.testing.assert_array_equal(out[0, 0], np.round((np.array([100] * 3) + CMAP[1]) / 2))
    np.testing.assert_array_equal(out[2], image[2])  # ignored: untouched
    entries = draw.legend_entries([mask], NAMES, CMAP, 255)
    assert [n for n, _ in entries] == ["background", "circle", "triangle", "ignored"]
    assert dict(entries)["triangle"] == (255, 225, 25)
