"""The VOC detection loader on a tiny fixture in VOC's real layout (VOCdevkit/VOC2007 with JPEGImages,
Annotations as XML and ImageSets/Main split files), offline; missing and corrupt files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.datasets import VOCDetection

from vclib.data.voc_detection import VOC_CLASSES, VOCDetectionBoxes, load_voc_detection
from vclib.detection import collate_detection

ANNOTATION = """<annotation>
  <folder>VOC2007</folder>
  <filename>{name}.jpg</filename>
  <source><database>The VOC2007 Database</database></source>
  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>
  <segmented>0</segmented>
{objects}
</annotation>
"""
OBJECT = """  <object>
    <name>{name}</name>
    <pose>Left</pose>
    <truncated>0</truncated>
    <difficult>{difficult}</difficult>
    <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>
  </object>"""

FIXTURE = {  # id: (width, height, [(class, difficult, xmin, ymin, xmax, ymax)])
    "000005": (200, 100, [("chair", 0, 11, 21, 60, 80), ("dog", 1, 100, 10, 150, 90), ("person", 0, 1, 1, 200, 100)]),
    "000007": (100, 150, [("car", 0, 41, 31, 90, 120)]),
}


def write_voc(root: Path, year: str = "2007", image_set: str = "trainval") -> Path:
    base = root / "VOCdevkit" / f"VOC{year}"
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    for name, (width, height, objects) in FIXTURE.items():
        Image.new("RGB", (width, height), (200, 30, 90)).save(base / "JPEGImages" / f"{name}.jpg", quality=95)
        body = "\n".join(OBJECT.format(name=c, difficult=d, x1=a, y1=b, x2=x, y2=y) for c, d, a, b, x, y in objects)
        (base / "Annotations" / f"{name}.xml").write_text(ANNOTATION.format(name=name, width=width, height=height,
                                                                            objects=body))
    (base / "ImageSets" / "Main" / f"{image_set}.txt").write_text("\n".join(FIXTURE) + "\n")
    return base


def test_voc_fixture_boxes_labels_and_resizing(tmp_path) -> None:
    write_voc(tmp_path)
    dataset = VOCDetectionBoxes(tmp_path, "2007", "trainval", size=64)
    assert len(dataset) == 2 and len(VOCDetection(tmp_path, "2007", "trainval")) == 2  # torchvision reads it too
    image, target = dataset[0]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    assert target["labels"].tolist() == [VOC_CLASSES.index("chair"), VOC_CLASSES.index("person")]  # difficult dog out
    # 200 x 100 -> 64 x 64: x scaled by 0.32, y by 0.64; VOC's 1-based xmin, ymin become 0-based.
    expected = torch.tensor([[10 * 0.32, 20 * 0.64, 60 * 0.32, 80 * 0.64], [0.0, 0.0, 64.0, 64.0]])
    assert torch.allclose(target["boxes"].as_subclass(torch.Tensor), expected, atol=1e-4)
    assert tuple(target["boxes"].canvas_size) == (64, 64)
    sizes = dataset.box_sizes()  # from the XML alone: chair, person, car
    assert torch.allclose(sizes[:2], expected[:, 2:] - expected[:, :2], atol=1e-4) and sizes.shape == (3, 2)
    with_difficult = VOCDetectionBoxes(tmp_path, "2007", "trainval", size=64, keep_difficult=True)
    assert with_difficult[0][1]["labels"].tolist() == [8, 11, 14]
    images, targets = collate_detection([dataset[0], dataset[1]])
    assert images.shape == (2, 3, 64, 64) and targets[1]["labels"].tolist() == [VOC_CLASSES.index("car")]


def test_voc_protocol_joins_2007_and_2012(tmp_path) -> None:
    write_voc(tmp_path / "voc", "2007", "trainval")
    write_voc(tmp_path / "voc", "2012", "trainval")
    write_voc(tmp_path / "voc", "2007", "test")
    assert len(load_voc_detection("train", size=32, data_dir=tmp_path, download=False)) == 4
    assert len(load_voc_detection("test", size=32, data_dir=tmp_path, download=False)) == 2


def test_voc_missing_and_corrupt_files_are_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="trainval.txt"):
        VOCDetectionBoxes(tmp_path, "2007", "trainval")
    base = write_voc(tmp_path)
    (base / "Annotations" / "000007.xml").write_text("<annotation><object><name>dog")
    dataset = VOCDetectionBoxes(tmp_path, "2007", "trainval", size=32)
    with pytest.raises(ValueError, match="000007.xml"):
        dataset[1]
    (base / "JPEGImages" / "000005.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="000005.jpg"):
        dataset[0]
    with pytest.raises(ValueError, match="image_set"):
        VOCDetectionBoxes(tmp_path, "2012", "test")
