"""The exercise edition of the course: ``python -m vclib student OUT``.

Teaching implementations in ``vclib`` mark their core with nbgrader's comment lines: a line
``### BEGIN SOLUTION`` and a line ``### END SOLUTION`` inside the function body, around the code that
the student writes.

The student copy replaces each marked region with ``raise NotImplementedError("Exercise: ...")`` and keeps
the signature, the docstring and the code around it. Its notebooks keep no outputs (stored outputs show
the solutions' source), and ``EXERCISES.md`` lists each exercise with the tests that grade it
(``@pytest.mark.exercise("<exercise id>")``, run by ``python -m vclib grade``).
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"

#: Which project each part of vclib belongs to (the longest matching prefix wins).
PROJECT_OF = {
    "vclib.basics": "P1", "vclib.video": "P1", "vclib.metrics": "P1", "vclib.transformer.patches": "P1",
    "vclib.segmentation": "P2", "vclib.detection": "P2", "vclib.augment": "P2", "vclib.transformer.attention": "P2",
    "vclib.sequence": "P3", "vclib.transformer.vit": "P3",
    "vclib.generative": "P4", "vclib.adversarial": "P4",
    "vclib.pointcloud": "P5",
}
#: Never copied into the student edition.
SKIPPED_PARTS = {".git", ".venv", "build", "__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints"}


@dataclass(frozen=True)
class Exercise:
    """One marked region: ``id`` is the enclosing function's import path, e.g. ``vclib.basics.softmax.softmax``."""

    id: str
    project: str
    path: str
    begin_line: int
    end_line: int
    summary: str


def project_of(module: str) -> str:
    """The project (``"P1"`` ... ``"P5"``) of a vclib module, ``"library"`` when none matches."""
    matches = [prefix for prefix in PROJECT_OF if module == prefix or module.startswith(prefix + ".")]
    return PROJECT_OF[max(matches, key=len)] if matches else "library"


def exercises_in_file(path: Path, root: Path) -> list[Exercise]:
    """The marked regions of one source file, each tied to the function that holds it.

    Raises:
        ValueError: a marker without its partner, nested markers, or a marker outside any function.
    """
    lines = path.read_text().splitlines()
    markers = [(number, line.strip()) for number, line in enumerate(lines, 1) if line.strip() in (BEGIN, END)]
    if not markers:
        return []
    relative = path.relative_to(root).as_posix()
    if [kind for _, kind in markers] != [BEGIN, END] * (len(markers) // 2) or len(markers) % 2:
        raise ValueError(f"{relative}: solution markers must alternate {BEGIN} / {END}, got {markers}")
    functions = [node for node in ast.walk(ast.parse("\n".join(lines))) if isinstance(node, ast.FunctionDef)]
    module = relative.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    exercises = []
    for (begin, _), (end, _) in zip(markers[::2], markers[1::2], strict=True):
        holders = [f for f in functions if f.lineno < begin <= f.end_lineno]  # END may trail the last statement
        if not holders:
            raise ValueError(f"{relative}:{begin}: a solution region must lie inside a function")
        function = max(holders, key=lambda f: f.lineno)  # the innermost
        summary = (ast.get_docstring(function) or function.name).strip().splitlines()[0]
        exercises.append(Exercise(f"{module}.{function.name}", project_of(module), relative, begin, end, summary))
    return exercises


def find_exercises(root: Path) -> list[Exercise]:
    """Every marked region under ``root/vclib``, in file and line order."""
    return [e for path in sorted((root / "vclib").rglob("*.py")) for e in exercises_in_file(path, root)]


def strip_solutions(text: str, exercises: list[Exercise]) -> str:
    """``text`` with each exercise's region (markers included) replaced by one ``raise NotImplementedError``."""
    lines = text.splitlines(keepends=True)
    for exercise in sorted(exercises, key=lambda e: e.begin_line, reverse=True):
        marker = lines[exercise.begin_line - 1]
        indent = marker[: len(marker) - len(marker.lstrip())]
        message = json.dumps(f"Exercise: {exercise.summary}")
        lines[exercise.begin_line - 1 : exercise.end_line] = [f"{indent}raise NotImplementedError({message})\n"]
    return "".join(lines)


def exercise_tests(root: Path) -> dict[str, list[str]]:
    """Test ids per exercise id, read from ``@pytest.mark.exercise("<id>", ...)`` decorators in ``root/tests``."""
    tests: dict[str, list[str]] = {}
    for path in sorted((root / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "pytest.mark.exercise":
                    for argument in decorator.args:
                        tests.setdefault(ast.literal_eval(argument), []).append(f"{path.name}::{node.name}")
    return tests


def repository_files(root: Path) -> list[Path]:
    """The files that make up the repository: git's tracked and unignored files, else a walk without caches."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                                capture_output=True, check=True, text=True).stdout.split("\0")
        return [root / name for name in listed if name and (root / name).is_file()]
    except (OSError, subprocess.CalledProcessError):
        return [p for p in root.rglob("*") if p.is_file() and not SKIPPED_PARTS & set(p.relative_to(root).parts)]


def clear_outputs(path: Path) -> None:
    """Remove a notebook's outputs, execution counts and stored widget state in place."""
    notebook = json.loads(path.read_text())
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    notebook.get("metadata", {}).pop("widgets", None)
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def write_student_copy(out: Path, root: Path) -> list[Exercise]:
    """Write the exercise edition of the repository at ``root`` into the new folder ``out``.

    Returns:
        The exercises that were stripped.

    Raises:
        ValueError: ``out`` exists and is not empty, or lies inside ``root``.
    """
    root, out = root.resolve(), out.resolve()
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"out must be a new or empty folder, got {out}")
    if out == root or root in out.parents:
        raise ValueError(f"out must lie outside the repository {root}, got {out}")
    exercises = find_exercises(root)
    by_file: dict[str, list[Exercise]] = {}
    for exercise in exercises:
        by_file.setdefault(exercise.path, []).append(exercise)
    for source in repository_files(root):
        relative = source.relative_to(root).as_posix()
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative in by_file:
            target.write_text(strip_solutions(source.read_text(), by_file[relative]))
        else:
            shutil.copy2(source, target)
        if target.suffix == ".ipynb":
            clear_outputs(target)
    (out / "EXERCISES.md").write_text(exercises_markdown(exercises, exercise_tests(root)))
    return exercises


def exercises_markdown(exercises: list[Exercise], tests: dict[str, list[str]]) -> str:
    """``EXERCISES.md``: one row per exercise with its project, place and grading tests."""
    rows = [
        "# Exercises",
        "",
        "Each exercise is a `raise NotImplementedError(\"Exercise: ...\")` in `vclib`. Implement it, run its",
        "notebook, then `python -m vclib grade` to run the tests that grade it (points per exercise = 10 x the",
        "share of its tests that pass).",
        "",
        "| Project | Exercise | Where | Graded by |",
        "| --- | --- | --- | --- |",
    ]
    for e in sorted(exercises, key=lambda e: (e.project, e.path, e.begin_line)):
        graded_by = "<br>".join(f"`{t}`" for t in tests.get(e.id, [])) or "(no test yet)"
        rows.append(f"| {e.project} | `{e.id}`: {e.summary} | `{e.path}:{e.begin_line}` | {graded_by} |")
    return "\n".join(rows) + "\n"
