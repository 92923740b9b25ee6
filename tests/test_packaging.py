"""Repository plumbing: dependency lists agree, one repository URL, notebooks are built and run."""

import json
import re
from pathlib import Path

import nbformat
import pytest

from vclib import notebooks

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _pyproject_dependencies() -> list[str]:
    """The runtime set plus every extra, as environment.yml must list it."""
    project = _pyproject()
    extras = [req for reqs in project["optional-dependencies"].values() for req in reqs]
    return sorted(set(project["dependencies"]) | set(extras))


def _environment_dependencies() -> list[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("      # pip-managed: the same list as pyproject.toml (tests/test_packaging.py)")
    return sorted(line.strip()[2:] for line in lines[start + 1:] if line.strip().startswith("- "))


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    assert _environment_dependencies() == _pyproject_dependencies()


def test_runtime_set_leaves_colab_tooling_to_extras():
    runtime = {re.split(r"[<>=!~\[ ]", req)[0].lower() for req in _pyproject()["dependencies"]}
    tooling = {"jupyterlab", "ipykernel", "nbval", "nbclient", "nbformat", "jupytext", "pytest", "notebook",
               "jupyter-server", "jupyter-client", "tornado"}
    assert not runtime & tooling, sorted(runtime & tooling)
    assert {"torch", "torchvision", "trimesh", "h5py", "scipy"} <= runtime
    assert {"lab", "dev", "clip"} <= set(_pyproject()["optional-dependencies"])


def test_torch_is_never_pinned_exactly():
    for requirement in _pyproject_dependencies():
        if re.match(r"torch(vision)?\b", requirement):
            assert "==" not in requirement, requirement


def test_one_repository_url_for_badges_and_colab_cells():
    url = notebooks.repository_url()
    readme = (ROOT / "README.md").read_text()
    slug = url.removeprefix("https://github.com/")
    badges = re.findall(r"colab\.research\.google\.com/github/([^/]+/[^/]+)/", readme)
    assert badges and set(badges) == {slug}
    assert set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", readme)) <= {url}
    for path in sorted((ROOT / "notebooks").glob("P*.ipynb")):
        first = nbformat.read(path, as_version=4).cells[0]
        assert first.source == notebooks.colab_install_source(), path.name


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("P*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_are_built_from_sources_and_stored_executed(path):
    import jupytext

    source = ROOT / "notebooks" / "sources" / f"{path.stem}.py"
    assert source.is_file(), f"{path.name} has no source in notebooks/sources"
    stored = nbformat.read(path, as_version=4)
    expected = jupytext.read(source, fmt="py:percent")
    stale = [c.source for c in stored.cells[1:]] != [c.source for c in expected.cells]
    assert not stale, "rebuild with python -m vclib build"
    code = [c for c in stored.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert None not in counts and counts == sorted(counts), "store outputs with python -m vclib run --inplace"
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)
    assert "application/vnd.jupyter.widget-view+json" not in json.dumps([c.outputs for c in code if
                                                                         "NBVAL_CHECK_OUTPUT" in c.source])


def test_select_rejects_unknown_notebook():
    with pytest.raises(ValueError, match="no notebook matches 'P9'"):
        notebooks.select(["P9"], notebooks.NOTEBOOK_DIR, ".ipynb")


def test_keep_outputs_only_when_every_code_cell_is_unchanged(tmp_path):
    v4 = nbformat.v4
    ran = v4.new_code_cell("x = 1", execution_count=1, outputs=[v4.new_output("stream", text="1\n")])
    stored = v4.new_notebook(cells=[v4.new_markdown_cell("old text"), ran])
    stored.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"abc": {}}}}
    target = tmp_path / "N.ipynb"
    nbformat.write(stored, target)
    edited = v4.new_notebook(cells=[v4.new_markdown_cell("new text"), v4.new_code_cell("x = 1")])
    assert notebooks._carry_outputs(edited, target)
    assert edited.cells[1].execution_count == 1 and edited.cells[1].outputs[0]["text"] == "1\n"
    assert edited.metadata["widgets"] == stored.metadata["widgets"]  # the widget views need their state
    changed = v4.new_notebook(cells=[v4.new_code_cell("x = 2")])
    assert not notebooks._carry_outputs(changed, target) and changed.cells[0].outputs == []
    assert not notebooks._carry_outputs(edited, tmp_path / "missing.ipynb")
