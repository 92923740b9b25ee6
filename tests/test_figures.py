"""The figures in assets/ are up to date with the code that draws them, referenced correctly and legible.

These tests never redraw the stored figures (``python -m vclib figures`` does, in about three minutes);
they compare hashes in ``assets/manifest.json``. One test draws one cheap diagram into a temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from vclib import figures

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
# The names that the README, the notebooks and the issue ask for.
EXPECTED = {
    "1_conv_arithmetic.png", "1_video.png", "2_yolo1.png", "2_yolo2.png", "2_transformers.png", "3_GRU.png",
    "3_VIT.png", "4_VAE.png", "4_VAE2.png", "4_GAN.png", "4_attacks.png", "5_3D_Representation.png",
    "5_PointNet.png", "5_PointNet1.png", "5_CLIP.png",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((ASSETS / "manifest.json").read_text())


def test_registry_and_manifest_cover_every_figure(manifest):
    assert set(figures.FIGURES) == EXPECTED
    assert set(manifest["figures"]) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_figure_is_up_to_date(manifest, name):
    entry = manifest["figures"][name]
    assert digest(ASSETS / name) == entry["sha256"], f"{name} changed since it was drawn: run python -m vclib figures"
    package = {path.relative_to(ROOT).as_posix() for path in (ROOT / "vclib" / "figures").glob("*.py")}
    modules = {module.replace(".", "/") + ".py" for module in figures.FIGURES[name].modules}
    assert package | modules == set(entry["sources"]), f"{name}: the manifest lists other sources than the registry"
    for path, expected in entry["sources"].items():
        assert digest(ROOT / path) == expected, f"{path} changed since {name} was drawn: run python -m vclib figures"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_figure_is_a_png_of_at_least_150_dpi(name):
    path = ASSETS / name
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        dpi = image.info.get("dpi")
        assert dpi is not None, f"{name} has no pHYs chunk"
        assert min(dpi) >= 149.9, f"{name} is stored at {dpi} dpi"
        assert min(image.size) >= 600, f"{name} is only {image.size} pixels"


def asset_references() -> list[tuple[Path, str]]:
    sources = [ROOT / "README.md", *sorted((ROOT / "notebooks" / "sources").glob("*.py"))]
    pattern = re.compile(r"assets/([\w.-]+\.png)")
    return [(source, name) for source in sources for name in pattern.findall(source.read_text())]


def test_readme_and_notebooks_show_the_figures():
    references = asset_references()
    assert any(source.name == "README.md" for source, _ in references), "the README shows no figure"
    assert {source.name[:2] for source, _ in references} >= {"P1", "P3", "P4", "P5"}


@pytest.mark.parametrize(("source", "name"), asset_references(), ids=lambda value: getattr(value, "name", value))
def test_every_referenced_figure_exists(source, name):
    assert (ASSETS / name).is_file(), f"{source.name} shows assets/{name}, which does not exist"
    assert name in EXPECTED


def copy_checkout(tmp_path: Path) -> Path:
    """assets/ and the vclib sources the manifest names, in a throwaway root."""
    shutil.copytree(ASSETS, tmp_path / "assets")
    shutil.copytree(ROOT / "vclib", tmp_path / "vclib", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_stale_figures_is_empty_for_the_stored_assets(tmp_path):
    root = copy_checkout(tmp_path)
    assert figures.stale_figures(root / "assets", root) == []


def test_a_tampered_png_is_detected(tmp_path):
    root = copy_checkout(tmp_path)
    target = root / "assets" / "3_GRU.png"
    target.write_bytes(target.read_bytes() + b"\0")
    assert figures.stale_figures(root / "assets", root) == ["3_GRU.png"]


def test_an_edited_source_makes_its_figures_stale(tmp_path):
    root = copy_checkout(tmp_path)
    gru = root / "vclib" / "sequence" / "gru.py"
    gru.write_text(gru.read_text() + "\n# edited\n")
    assert figures.stale_figures(root / "assets", root) == ["3_GRU.png"]
    drawing = root / "vclib" / "figures" / "drawing.py"
    drawing.write_text(drawing.read_text() + "\n# edited\n")
    assert figures.stale_figures(root / "assets", root) == sorted(EXPECTED)


def test_a_missing_png_is_detected(tmp_path):
    root = copy_checkout(tmp_path)
    (root / "assets" / "5_CLIP.png").unlink()
    assert figures.stale_figures(root / "assets", root) == ["5_CLIP.png"]


def test_one_cheap_diagram_draws_the_same_png_twice(tmp_path):
    first = figures.make_figures(tmp_path / "a", ["3_GRU.png"])
    figures.make_figures(tmp_path / "b", ["3_GRU.png"])
    assert set(first) == {"3_GRU.png"}
    data = (tmp_path / "a" / "3_GRU.png").read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data == (tmp_path / "b" / "3_GRU.png").read_bytes()
    with Image.open(tmp_path / "a" / "3_GRU.png") as image:
        assert min(image.info["dpi"]) >= 149.9
    written = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert set(written["figures"]) == {"3_GRU.png"}
    assert written["figures"]["3_GRU.png"]["sha256"] == digest(tmp_path / "a" / "3_GRU.png")


def test_unknown_names_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="names"):
        figures.make_figures(tmp_path, ["6_missing.png"])
