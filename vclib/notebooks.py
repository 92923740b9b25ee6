"""Building and executing the course notebooks: ``python -m vclib build`` and ``python -m vclib run``.

Notebook sources are jupytext percent-format scripts in ``notebooks/sources``. ``build`` turns them
into ``.ipynb`` files, prepending the guarded Colab install cell. ``run`` executes notebooks headless
with nbclient, in quick mode by default, and collects wall times and logged metrics into
``build/report.json``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
SOURCE_DIR = NOTEBOOK_DIR / "sources"
REPORT_PATH = ROOT / "build" / "report.json"


def repository_url() -> str:
    """The repository URL, held in one place: ``[project.urls] Repository`` of pyproject.toml."""
    match = re.search(r'^Repository\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    if match is None:
        raise ValueError("pyproject.toml has no [project.urls] Repository entry")
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


def build(names: list[str] | None = None) -> list[Path]:
    """Convert notebook sources to ``notebooks/<name>.ipynb`` (outputs cleared)."""
    import jupytext
    import nbformat

    written = []
    for source in select(names, SOURCE_DIR, ".py"):
        notebook = jupytext.read(source, fmt="py:percent")
        notebook.cells.insert(0, nbformat.v4.new_code_cell(colab_install_source()))
        notebook.metadata = {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
        for cell in notebook.cells:
            cell.metadata.pop("lines_to_next_cell", None)
        target = NOTEBOOK_DIR / f"{source.stem}.ipynb"
        nbformat.write(nbformat.validator.normalize(notebook)[1], target)
        written.append(target)
    return written


@dataclass
class NotebookResult:
    """What ``run`` measured for one notebook."""

    name: str
    seconds: float
    ok: bool
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""


def execute(path: Path, mode: str, inplace: bool, timeout: int) -> NotebookResult:
    """Execute one notebook headless; write it to ``build/notebooks`` or back in place."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as scratch:
        metrics_file = Path(scratch) / "metrics.json"
        os.environ.update({"VCLIB_MODE": mode, "VCLIB_PROGRESS": "0", "VCLIB_METRICS_FILE": str(metrics_file)})
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(path.parent)}})
        started = time.perf_counter()
        error = ""
        try:
            client.execute()
        except (CellExecutionError, CellTimeoutError) as failure:
            index = next((i for i, c in enumerate(notebook.cells) if c.get("cell_type") == "code" and any(
                o.get("output_type") == "error" for o in c.get("outputs", []))), None)
            where = f"cell {index}" if index is not None else "a cell"
            message = re.sub(r"\x1b\[[0-9;]*m", "", str(failure)).strip().splitlines()[-1]
            error = f"{path.name}: {where} failed: {message}"
        seconds = time.perf_counter() - started
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    target = path if inplace else ROOT / "build" / "notebooks" / path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    return NotebookResult(path.stem, round(seconds, 1), not error, metrics, error)


def run(names: list[str] | None = None, mode: str = "quick", inplace: bool = False,
        timeout: int = 900) -> list[NotebookResult]:
    """Execute notebooks, print a summary table and write ``build/report.json``."""
    from vclib.session import resolve_mode

    mode = resolve_mode(mode)
    results = []
    for path in select(names, NOTEBOOK_DIR, ".ipynb"):
        print(f"running {path.name} ({mode} mode) ...", flush=True)
        result = execute(path, mode, inplace, timeout)
        results.append(result)
        if not result.ok:
            print(f"FAILED {result.error}", flush=True)
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(REPORT_PATH.read_text()).get("notebooks", {}) if REPORT_PATH.is_file() else {}
    previous.update({r.name: asdict(r) for r in results})
    REPORT_PATH.write_text(json.dumps({"mode": mode, "notebooks": previous}, indent=2))
    print(summary_table(results))
    return results


def summary_table(results: list[NotebookResult]) -> str:
    """A plain-text table: notebook, status, seconds, headline metrics."""
    lines = [f"{'notebook':<48} {'status':<7} {'seconds':>8}  metrics", "-" * 100]
    for r in results:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in r.metrics.items())
        lines.append(f"{r.name:<48} {'ok' if r.ok else 'FAILED':<7} {r.seconds:>8.1f}  {metrics}")
    lines.append(f"total {sum(r.seconds for r in results):.1f} s")
    return "\n".join(lines)
