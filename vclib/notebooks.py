"""Building and executing the course notebooks: ``python -m vclib build`` and ``python -m vclib run``.

Notebook sources are jupytext percent-format scripts in ``notebooks/sources``. ``build`` turns them
into ``.ipynb`` files, prepending the guarded Colab install cell. ``run`` executes notebooks headless
(``vclib.runner``), in quick mode by default, and collects wall times and logged metrics into
``build/report.json``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from vclib.extras import require_extra

#: What ipykernel's kernelspec writes; JupyterLab stores this on open, so storing it keeps a clone clean.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


@cache
def repository_root() -> Path:
    """The course repository: ``VCLIB_ROOT``, else the first folder holding ``notebooks/sources`` and
    ``pyproject.toml`` upward from the working directory, else from this file (an editable install)."""
    if os.environ.get("VCLIB_ROOT"):
        return Path(os.environ["VCLIB_ROOT"]).resolve()
    for start in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            if (folder / "notebooks" / "sources").is_dir() and (folder / "pyproject.toml").is_file():
                return folder
    raise FileNotFoundError(
        "cannot find the course repository (a folder with notebooks/sources and pyproject.toml) above "
        f"{Path.cwd()}; run from inside a clone or set VCLIB_ROOT"
    )


def __getattr__(name: str) -> Path:
    """``ROOT``, ``NOTEBOOK_DIR``, ``SOURCE_DIR`` and ``REPORT_PATH``, found when first used."""
    paths = {"ROOT": (), "NOTEBOOK_DIR": ("notebooks",), "SOURCE_DIR": ("notebooks", "sources"),
             "REPORT_PATH": ("build", "report.json")}
    if name not in paths:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return repository_root().joinpath(*paths[name])


def repository_url() -> str:
    """The repository URL, held in one place: ``[project.urls] Repository`` of pyproject.toml."""
    pyproject = repository_root() / "pyproject.toml"
    match = re.search(r'^Repository\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
    if match is None:
        raise ValueError(f"{pyproject} has no [project.urls] Repository entry")
    return match.group(1)


def colab_install_source() -> str:
    """Cell 1 of every notebook: install vclib on Colab only, never pinning Colab's own torch."""
    return (
        "# Colab only: install the course library. Locally, `make run` or `pip install -e .` already did.\n"
        "import sys\n\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install -q "vclib @ git+{repository_url()}"'
    )


def select(names: list[str] | None, directory: Path, suffix: str) -> list[Path]:
    """Files in ``directory`` with ``suffix`` whose name starts with one of ``names`` (all if none)."""
    available = sorted(p for p in directory.glob(f"P*{suffix}"))
    if not names:
        return available
    chosen = []
    for name in names:
        matches = [p for p in available if p.stem == name or p.stem.startswith(f"{name}_")]
        if not matches:
            raise ValueError(f"no notebook matches {name!r}; available: {[p.stem for p in available]}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


def _carry_outputs(notebook: Any, target: Path) -> bool:
    """Copy outputs from the stored ``target`` into ``notebook`` when every code cell is unchanged (only
    markdown was edited, so the stored run is still the run of this notebook). True if copied."""
    import nbformat

    if not target.is_file():
        return False
    stored_notebook = nbformat.read(target, as_version=4)
    stored = [c for c in stored_notebook.cells if c.cell_type == "code"]
    fresh = [c for c in notebook.cells if c.cell_type == "code"]
    if [c.source for c in stored] != [c.source for c in fresh] or any(c.execution_count is None for c in stored):
        return False
    for old, new in zip(stored, fresh, strict=True):
        new.outputs, new.execution_count = old.outputs, old.execution_count
    for key in ("language_info", "widgets"):  # the run's kernel details and the widget state its outputs show
        if key in stored_notebook.metadata:
            notebook.metadata[key] = stored_notebook.metadata[key]
    return True


def build(names: list[str] | None = None, keep_outputs: bool = False) -> list[Path]:
    """Convert notebook sources to ``notebooks/<name>.ipynb`` (outputs cleared).

    With ``keep_outputs``, a notebook whose code cells are all unchanged keeps its stored outputs (a
    markdown-only edit needs no re-run); any other notebook is still written without outputs.
    """
    require_extra("jupytext", "nbformat", purpose="python -m vclib build")
    import jupytext
    import nbformat

    root = repository_root()
    written = []
    for source in select(names, root / "notebooks" / "sources", ".py"):
        notebook = jupytext.read(source, fmt="py:percent")
        notebook.cells.insert(0, nbformat.v4.new_code_cell(colab_install_source()))
        notebook.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
        for cell in notebook.cells:
            cell.metadata.pop("lines_to_next_cell", None)
        target = root / "notebooks" / f"{source.stem}.ipynb"
        if keep_outputs and not _carry_outputs(notebook, target):
            print(f"{target.name}: code changed, written without outputs (run it: python -m vclib run --inplace)")
        nbformat.write(nbformat.validator.normalize(notebook)[1], target)
        written.append(target)
    return written


@dataclass
class NotebookResult:
    """What ``run`` measured for one notebook."""

    name: str
    mode: str
    seconds: float
    ok: bool
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""


def execute(path: Path, mode: str, inplace: bool, timeout: int, reply_grace: float = 30.0) -> NotebookResult:
    """Execute one notebook headless; write it to ``build/notebooks`` or back in place."""
    from vclib import runner

    notebook = runner.nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as scratch:
        metrics_file = Path(scratch) / "metrics.json"
        env = {"VCLIB_MODE": mode, "VCLIB_PROGRESS": "0", "VCLIB_METRICS_FILE": str(metrics_file)}
        started = time.perf_counter()
        error = ""
        try:
            runner.execute_notebook(notebook, path.name, path.parent, env, timeout=timeout, reply_grace=reply_grace)
        except runner.NotebookRunError as failure:
            error = str(failure)
        seconds = time.perf_counter() - started
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    store_widget_snapshots(notebook)
    target = path if inplace else repository_root() / "build" / "notebooks" / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    runner.nbformat.write(notebook, target)
    return NotebookResult(path.stem, mode, round(seconds, 1), not error, metrics, error)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def widget_snapshot(model_id: str, state: dict[str, Any]) -> str | None:
    """The first PNG (base64) held by the widget ``model_id`` or, depth first, by the widgets inside it.

    A widget's figure is drawn into an ``Output`` widget, whose outputs nbclient stores in the widget state.
    """
    model = state.get(model_id)
    if model is None:
        return None
    for output in model["state"].get("outputs", []):
        if "image/png" in output.get("data", {}):
            return output["data"]["image/png"]
    for child in model["state"].get("children", []):
        png = widget_snapshot(child.removeprefix("IPY_MODEL_"), state)
        if png is not None:
            return png
    return None


def store_widget_snapshots(notebook: Any) -> int:
    """Add each widget's first figure as ``image/png`` beside its widget view, in the same output.

    JupyterLab draws the live widget when it can (a trusted notebook with a kernel) and the picture
    otherwise: in an untrusted notebook, on GitHub and on nbviewer, where the widget view alone shows
    only its text repr. Returns how many outputs received a picture.
    """
    state = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    stored = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            png = widget_snapshot(view["model_id"], state) if view else None
            if png is not None:
                output["data"]["image/png"] = png
                stored += 1
    return stored


def run(names: list[str] | None = None, mode: str = "quick", inplace: bool = False,
        timeout: int = 900) -> list[NotebookResult]:
    """Execute notebooks, print a summary table and write ``build/report.json``.

    Entries of notebooks not run this time stay in the report, each labelled with the mode it ran in.
    """
    from vclib.session import resolve_mode

    mode = resolve_mode(mode)
    results = []
    for path in select(names, repository_root() / "notebooks", ".ipynb"):
        print(f"running {path.name} ({mode} mode) ...", flush=True)
        result = execute(path, mode, inplace, timeout)
        results.append(result)
        if not result.ok:
            print(f"FAILED {result.error}", flush=True)
    report_path = repository_root() / "build" / "report.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    previous = load_report(report_path).get("notebooks", {}) if report_path.is_file() else {}
    previous.update({r.name: asdict(r) for r in results})
    report_path.write_text(json.dumps({"notebooks": previous}, indent=2))
    print(summary_table(results))
    return results


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a ``build/report.json`` written by ``python -m vclib run``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no report at {path}; run `python -m vclib run` first")
    return json.loads(path.read_text())


def summary_table(results: list[NotebookResult]) -> str:
    """A plain-text table: notebook, mode, status, seconds, headline metrics."""
    lines = [f"{'notebook':<44} {'mode':<6} {'status':<7} {'seconds':>8}  metrics", "-" * 100]
    for r in results:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in r.metrics.items())
        lines.append(f"{r.name:<44} {r.mode:<6} {'ok' if r.ok else 'FAILED':<7} {r.seconds:>8.1f}  {metrics}")
    lines.append(f"total {sum(r.seconds for r in results):.1f} s")
    return "\n".join(lines)
