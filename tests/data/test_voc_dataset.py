"""fluxseg_voc2012 on a tiny tar laid out exactly like the official one."""
from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import fluxseg.data as fd
from fluxseg.data import voc

SPLITS = {"train": ["2007_000032", "2007_000039", "2008_000003"],
          "val": ["2007_000033", "2009_000012"]}
UNLISTED = "2011_000001"  # in JPEGImages/SegmentationClass but in no split file


def _png_bytes(indices: np.ndarray) -> bytes:
    img = Image.fromarray(indices, mode="P")
    img.putpalette(voc.voc_colormap().ravel().tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def write_voc_tar(path, rng=np.random.default_rng(0)) -> dict:
    """Writes VOCtrainval_11-May-2012.tar at `path`; returns {id: (jpeg, mask)}."""
    root = "VOCdevkit/VOC2012/"
    content = {}
    with tarfile.open(path, "w") as tar:
        def add(name, data):
            info = tarfile.TarInfo(root + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for n, image_id in enumerate([*SPLITS["train"], *SPLITS["val"], UNLISTED]):
            h, w = 20 + 3 * n, 30 - 2 * n  # sizes differ per image
            mask = rng.integers(0, 21, (h, w)).astype(np.uint8)
            mask[0, :] = 255  # a 'void' border row
            jpeg = _jpeg_bytes(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            add(f"JPEGImages/{image_id}.jpg", jpeg)
            add(f"SegmentationClass/{image_id}.png", _png_bytes(mask))
            content[image_id] = (jpeg, mask)
        for split, ids in SPLITS.items():
            add(f"ImageSets/Segmentation/{split}.txt", ("\n".join(ids) + "\n").encode())
        all_ids = SPLITS["train"] + SPLITS["val"]
        add("ImageSets/Segmentation/trainval.txt", "\n".join(all_ids).encode())
    return content


@pytest.fixture(scope="module")
def voc_env(tmp_path_factory):
    manual = tmp_path_factory.mktemp("manual")
    content = write_voc_tar(manual / voc.TAR_NAME)
    data_dir = tmp_path_factory.mktemp("tfds")
    builder = tfds.builder("fluxseg_voc2012", data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    return builder, content, manual, data_dir


def test_splits_follow_the_imageset_files(voc_env):
    builder, _, _, _ = voc_env
    for split, voc_split in (("train", "train"), ("validation", "val")):
        names = {ex["file_name"].decode() for ex in tfds.as_numpy(builder.as_dataset(split=split))}
        assert names == set(SPLITS[voc_split])
    assert set(builder.info.splits) == {"train", "validation"}


def test_masks_are_palette_indices_and_images_are_the_jpegs(voc_env):
    builder, content, _, _ = voc_env
    ds = builder.as_dataset(split="train+validation",
                            decoders={"image": tfds.decode.SkipDecoding()})
    seen = 0
    for ex in tfds.as_numpy(ds):
        jpeg, mask = content[ex["file_name"].decode()]
        assert ex["image"] == jpeg  # stored as-is, not re-encoded
        np.testing.assert_array_equal(ex["segmentation_mask"][..., 0], mask)
        assert (ex["segmentation_mask"] == 255).any()
        seen += 1
    assert seen == 5


def test_rgb_mask_is_refused():
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (128, 0, 0)).save(buf, format="PNG")
    buf.seek(0)
    with pytest.raises(ValueError, match="palette"):
        voc.builder.read_palette_indices(buf)


def test_colormap_matches_the_voc_palette():
    cmap = voc.voc_colormap()
    assert cmap.shape == (256, 3) and cmap.dtype == np.uint8
    assert cmap[1].tolist() == [128, 0, 0] and cmap[15].tolist() == [192, 128, 128]
    assert cmap[255].tolist() == [224, 224, 192]
    assert len({tuple(c) for c in voc.COLORMAP}) == 21 == len(voc.CLASS_NAMES)


def test_pipeline_reads_voc_from_manual_dir(voc_env):
    _, content, manual, data_dir = voc_env
    cfg = fd.default_config()
    cfg.update(name="fluxseg_voc2012", data_dir=str(data_dir), manual_dir=str(manual),
               crop_size=(24, 24), eval_size=(40, 40))
    info = fd.info(cfg)
    assert info.num_classes == 21 and info.class_names[15] == "person"
    assert info.num_examples == {"train": 3, "validation": 2} and info.image_shape is None
    batches = list(fd.eval_iterator(cfg, "validation", global_batch_size=2,
                                    process_index=0, process_count=1))
    assert len(batches) == 1 and batches[0]["valid"].all()
    masks = {content[i][1].shape: content[i][1] for i in SPLITS["val"]}
    for mask in batches[0]["mask"]:  # top-left is the label, the rest padding
        h = int((mask[:, 0] != 255).sum()) + 1  # row 0 is the void border
        w = int((mask[1] != 255).sum())
        np.testing.assert_array_equal(mask[:h, :w], masks[(h, w)])
        assert (mask[h:] == 255).all() and (mask[:, w:] == 255).all()


def test_missing_tar_says_where_to_put_it(tmp_path):
    cfg = fd.default_config()
    cfg.update(name="fluxseg_voc2012", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        fd.info(cfg)
    message = str(err.value)
    assert str(tmp_path / "downloads" / "manual" / voc.TAR_NAME) in message
    assert voc.URL in message
