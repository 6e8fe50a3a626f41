"""The host-side metric sums: exact past 2^31 pixels, ignore index, the report."""
import numpy as np

from fluxseg.infer.report import ConfusionMatrix, TopK, markdown


def test_confusion_counts_by_hand_with_ignored_labels():
    target = np.array([[0, 0, 1, 255], [2, 1, -1, 7]])
    pred = np.array([[0, 1, 1, 2], [2, 0, 0, 2]])
    cm = ConfusionMatrix(3)
    cm.update(pred, target)
    want = np.zeros((3, 3), np.int64)
    for t, p in [(0, 0), (0, 1), (1, 1), (2, 2), (1, 0)]:  # 255, -1 and 7 never count
        want[t, p] += 1
    np.testing.assert_array_equal(cm.counts, want)


def test_accumulator_is_exact_past_2_to_the_31():
    """A Cityscapes-sized split and more: 3000 images of 1024x2048 = 6.3e9 pixels."""
    rng = np.random.RandomState(0)
    target = rng.choice(3, (1024, 2048), p=[0.7, 0.2, 0.1]).astype(np.uint8)  # road-like majority
    target[:, :100] = 255  # an ignored band
    pred = np.where(rng.rand(1024, 2048) < 0.9, target, (target + 1) % 3)
    one = ConfusionMatrix(3)
    one.update(pred, target)
    per_image = one.counts.copy()
    acc = ConfusionMatrix(3)
    acc.update(pred, target)
    for _ in range(2999):
        acc.add(per_image)
    assert acc.counts.dtype == np.int64
    total = int(acc.counts.sum())
    assert total == 3000 * 1024 * (2048 - 100) > 2 ** 32
    assert int(acc.counts[0, 0]) > 2 ** 31  # one cell alone passes int32's range
    for (i, j), v in np.ndenumerate(acc.counts):
        assert int(v) == 3000 * int(per_image[i, j])
    # An int32 matrix would have wrapped: the same sums in int32 are wrong.
    assert int(np.sum(np.full(3000, per_image[0, 0], np.int32), dtype=np.int32)) != int(acc.counts[0, 0])
    # Ratios are those of one image (no precision lost in the float scores either).
    a, b = acc.scores(), one.scores()
    for k in ("pixel_acc", "mean_acc", "mIoU", "fwIoU"):
        assert abs(a[k] - b[k]) < 1e-12


def test_topk_and_markdown():
    tk = TopK((1, 5))
    probs = np.array([0.1, 0.5, 0.2, 0.03, 0.05, 0.12])
    tk.update(probs, 1)
    tk.update(probs, 3)  # 6th of 6: outside the top 5
    tk.update(probs, 0)  # 4th: inside the top 5
    assert tk.scores() == {"top1": 1 / 3, "top5": 2 / 3}
    cm = ConfusionMatrix(2)
    cm.update(np.array([0, 1, 1]), np.array([0, 1, 0]))
    result = {**cm.scores(("sky", "road")), "workdir": "w", "step": 3, "split": "val",
              "num_examples": 1, "tta": None, "scales": [1.0], "support": [2, 1]}
    md = markdown(result, ("sky", "road"))
    assert "| sky | 50.00 | 50.00 | 2 |" in md and "| road | 50.00 | 100.00 | 1 |" in md
    assert "| 66.67 | 75.00 | 50.00 |" in md  # pixel_acc, mean_acc, mIoU
