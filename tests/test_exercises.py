"""The course's own exercises: marked in every project, graded by tests, absent from the student copy.

``test_student.py`` tests the machinery on a small repository; these tests run it on the course itself.
"""

from pathlib import Path

import pytest

import vclib
from vclib import grading, student
from vclib.grading import grade
from vclib.notebooks import select
from vclib.runner import NotebookRunError, execute_notebook
from vclib.student import exercise_tests, find_exercises, strip_solutions, write_student_copy

ROOT = Path(vclib.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def student_copy(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("edition") / "student"
    write_student_copy(copy, ROOT)
    return copy


def test_every_project_has_three_exercises_each_graded_by_a_test():
    exercises = find_exercises(ROOT)
    tests = exercise_tests(ROOT)
    per_project = {p: sum(e.project == p for e in exercises) for p in ("P1", "P2", "P3", "P4", "P5")}
    assert all(n >= 3 for n in per_project.values()), per_project
    assert [e.id for e in exercises if e.id not in tests] == []
    assert sorted(set(tests) - {e.id for e in exercises}) == []  # every marker names a real exercise


def test_no_solution_line_survives_in_the_student_copy(student_copy):
    exercises = find_exercises(ROOT)
    solution_lines = set()
    for exercise in exercises:
        lines = (ROOT / exercise.path).read_text().splitlines()[exercise.begin_line : exercise.end_line - 1]
        solution_lines |= {line.strip() for line in lines if len(line.strip()) > 12}
    outside = "\n".join(
        strip_solutions(p.read_text(), [e for e in exercises if e.path == p.relative_to(ROOT).as_posix()])
        for p in student.repository_files(ROOT) if p.suffix == ".py"
    )
    distinctive = {line for line in solution_lines if line not in outside}  # lines written elsewhere too are fair
    copied = [p for p in student_copy.rglob("*") if p.is_file() and p.suffix in (".py", ".ipynb", ".md")]
    leaks = [str(p.relative_to(student_copy)) for p in copied if any(line in p.read_text() for line in distinctive)]
    assert distinctive and leaks == []


def test_solution_scores_full_points_and_the_student_copy_none(student_copy, tmp_path):
    pytest.importorskip("torchattacks", reason="FGSM and PGD are graded against it (make install adds it)")
    solution = grade(ROOT, report=tmp_path / "grades.json")  # the report must not land in the repository
    assert solution and all(g["points"] == grading.POINTS for g in solution.values()), solution
    assert all(g["points"] == 0 and g["tests"] > 0 for g in grade(student_copy).values())


def test_student_notebook_stops_at_its_first_exercise(student_copy):
    import nbformat

    [path] = select(["P1"], student_copy / "notebooks", ".ipynb")
    notebook = nbformat.read(path, as_version=4)
    with pytest.raises(NotebookRunError, match=r"P1_.*cell \d+ failed: NotImplementedError: Exercise: "):
        execute_notebook(notebook, path.name, path.parent, {"PYTHONPATH": str(student_copy), "VCLIB_MODE": "quick"})
