"""Colab's start-up, rehearsed here: each notebook's first two cells in a fresh kernel that looks like Colab's.

A fake ``google.colab`` package is importable and imported before the first cell, as on Colab, and a
``%pip`` magic records its command instead of installing. The probe cell then reports what the first
cells did: the install command, the widget manager, the plotly renderer, the data folder and the device
that full mode picks when CUDA is present.
"""

import json
from pathlib import Path

import nbformat
import pytest

from vclib import notebooks
from vclib.runner import execute_notebook

FAKE_COLAB = {
    "google/__init__.py": "",
    "google/colab/__init__.py": "from . import output\n",
    "google/colab/output.py": (
        "calls = []\n\n\ndef enable_custom_widget_manager():\n    calls.append('enable_custom_widget_manager')\n"
    ),
}
PREAMBLE = """
import google.colab, torch
pip_commands = []
get_ipython().register_magic_function(lambda line: pip_commands.append(line), "line", "pip")
torch.cuda.is_available = lambda: True  # a GPU runtime
"""
PROBE = """
import json, os, plotly.io as pio
print(json.dumps({"pip": pip_commands, "widget_calls": google.colab.output.calls,
                  "renderer": pio.renderers.default, "data_dir": str(cfg.data_dir),
                  "device": cfg.device.type, "mode": cfg.mode}))
"""


@pytest.fixture(scope="module")
def fake_colab(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fake_colab")
    for name, text in FAKE_COLAB.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("path", sorted(notebooks.NOTEBOOK_DIR.glob("P*.ipynb")), ids=lambda p: p.stem)
def test_first_cells_on_colab(path, fake_colab, monkeypatch):
    monkeypatch.delenv("VCLIB_DATA", raising=False)
    stored = nbformat.read(path, as_version=4)
    install_cell, setup_cell = [c for c in stored.cells if c.cell_type == "code"][:2]
    assert "vclib.setup(" in setup_cell.source
    probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in
                                            (PREAMBLE, install_cell.source, setup_cell.source, PROBE)])
    execute_notebook(probe, path.name, path.parent, {"PYTHONPATH": str(fake_colab), "VCLIB_MODE": "full"})
    report = json.loads(probe.cells[-1].outputs[-1]["text"])
    [command] = report["pip"]
    assert command.split()[:2] == ["install", "-q"]
    assert f"git+{notebooks.repository_url()}" in command
    assert "torch" not in command and "--upgrade" not in command and "-U" not in command.split()
    assert "--force-reinstall" not in command
    assert report["widget_calls"] == ["enable_custom_widget_manager"]
    assert report["renderer"] == "colab"
    assert report["data_dir"] == "/content/data"  # Colab's writable disk, not the home folder
    assert (report["mode"], report["device"]) == ("full", "cuda")
