"""Grading the exercise edition: ``python -m vclib grade [PATH]``.

Tests name the exercise they grade with ``@pytest.mark.exercise("<exercise id>")``. ``grade`` runs those
tests against the copy at ``PATH`` in a fresh interpreter (so that the copy's ``vclib`` is the one
imported), gives each exercise ``POINTS`` times the share of its tests that pass, prints a table and
writes ``grades.json``. This module is also the pytest plugin (``-p vclib.grading``) that records the
outcome of every test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from vclib.student import exercise_tests

POINTS = 10
RESULTS_ENV = "VCLIB_GRADING_RESULTS"
_outcomes: dict[str, dict] = {}


def pytest_itemcollected(item) -> None:
    """Plugin hook: remember which exercises each collected test grades."""
    exercises = [name for marker in item.iter_markers("exercise") for name in marker.args]
    _outcomes.setdefault(item.nodeid, {"passed": True})["exercises"] = exercises


def pytest_runtest_logreport(report) -> None:
    """Plugin hook: a test passes only if no phase failed and its body was not skipped."""
    entry = _outcomes.setdefault(report.nodeid, {"passed": True, "exercises": []})
    if report.failed or report.skipped:
        entry["passed"] = False


def pytest_sessionfinish(session) -> None:
    """Plugin hook: write the outcomes where ``grade`` asked for them."""
    if os.environ.get(RESULTS_ENV):
        Path(os.environ[RESULTS_ENV]).write_text(json.dumps(_outcomes))


def grade(path: Path, only: list[str] | None = None, report: Path | None = None) -> dict[str, dict]:
    """Run the exercise tests against the repository copy at ``path`` and score each exercise.

    Args:
        path: a solution or student copy of the repository (with ``vclib/`` and ``tests/``).
        only: exercise ids to grade; all exercises that have tests when ``None``.
        report: where to write the grades as JSON; ``path/grades.json`` when ``None``.

    Returns:
        ``{exercise id: {"tests": n, "passed": k, "points": POINTS * k / n}}``, also written to ``report``.
    """
    path = Path(path).resolve()
    if not (path / "vclib").is_dir() or not (path / "tests").is_dir():
        raise FileNotFoundError(f"path must be a copy of the course repository with vclib/ and tests/, got {path}")
    tests = exercise_tests(path)
    unknown = sorted(set(only or []) - set(tests))
    if unknown:
        raise ValueError(f"only names exercises without tests: {unknown}; known: {sorted(tests)}")
    chosen = {name: tests[name] for name in (only or sorted(tests))}
    node_ids = sorted({f"tests/{test}" for names in chosen.values() for test in names})
    with tempfile.TemporaryDirectory() as scratch:
        results_file = Path(scratch) / "outcomes.json"
        env = {**os.environ, RESULTS_ENV: str(results_file), "VCLIB_PROGRESS": "0",
               "PYTHONPATH": os.pathsep.join([str(path), *filter(None, [os.environ.get("PYTHONPATH")])])}
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "vclib.grading", "-p", "no:cacheprovider",
                        *node_ids], cwd=path, env=env, check=False)
        outcomes = json.loads(results_file.read_text()) if results_file.is_file() else {}
    grades = {}
    for name in chosen:
        ran = [o for o in outcomes.values() if name in o.get("exercises", [])]
        passed = sum(o["passed"] for o in ran)
        points = round(POINTS * passed / len(ran), 1) if ran else 0.0
        grades[name] = {"tests": len(ran), "passed": passed, "points": points}
    Path(report if report is not None else path / "grades.json").write_text(json.dumps(grades, indent=2))
    return grades


def grades_table(grades: dict[str, dict]) -> str:
    """A plain-text table: exercise, tests passed, points, and the total."""
    lines = [f"{'exercise':<60} {'tests passed':>12} {'points':>7}", "-" * 81]
    for name, g in grades.items():
        lines.append(f"{name:<60} {g['passed']:>5} / {g['tests']:<4} {g['points']:>7.1f}")
    total = sum(g["points"] for g in grades.values())
    lines.append(f"total {total:.1f} / {POINTS * len(grades)} points")
    return "\n".join(lines)
