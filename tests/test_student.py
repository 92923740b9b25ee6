"""The exercise edition (``python -m vclib student``) and its autograder (``python -m vclib grade``).

The machinery is tested on a small repository written here; the course's own exercises are checked for
markers, tests and leaks of solution text, and graded once as the solution and once as a student copy.
"""

import json
import shutil
from pathlib import Path

import pytest

import vclib
from vclib.grading import grade
from vclib.student import exercise_tests, find_exercises, strip_solutions, write_student_copy

ROOT = Path(vclib.__file__).resolve().parent.parent
TOY = '''"""A toy topic."""


def add(a, b):
    """Add two numbers."""
    ### BEGIN SOLUTION
    total = a + b
    ### END SOLUTION
    return total


def scale(x, factor=2):
    """Scale ``x`` by ``factor``."""
    ### BEGIN SOLUTION
    return x * factor
    ### END SOLUTION
'''
TOY_TESTS = '''import pytest

from vclib.toy import add, scale


@pytest.mark.exercise("vclib.toy.add")
@pytest.mark.parametrize("a", [1, 2])
def test_add(a):
    assert add(a, 3) == a + 3


@pytest.mark.exercise("vclib.toy.scale")
def test_scale():
    assert scale(4) == 8


def test_not_graded():
    assert True
'''


@pytest.fixture
def toy_repo(tmp_path) -> Path:
    repo = tmp_path / "repo"
    (repo / "vclib").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "notebooks").mkdir()
    (repo / "vclib" / "__init__.py").write_text("")
    for module in ("student.py", "grading.py"):
        shutil.copy(ROOT / "vclib" / module, repo / "vclib" / module)
    (repo / "vclib" / "toy.py").write_text(TOY)
    (repo / "tests" / "test_toy.py").write_text(TOY_TESTS)
    shutil.copy(ROOT / "conftest.py", repo / "conftest.py")
    notebook = {"cells": [{"cell_type": "code", "source": "print(1)", "metadata": {}, "execution_count": 3,
                           "outputs": [{"output_type": "stream", "name": "stdout", "text": "total = a + b"}]}],
                "metadata": {"widgets": {"state": {}}}, "nbformat": 4, "nbformat_minor": 5}
    (repo / "notebooks" / "P1_toy.ipynb").write_text(json.dumps(notebook))
    return repo


def test_exercises_are_found_with_their_function_and_summary(toy_repo):
    exercises = find_exercises(toy_repo)
    assert [(e.id, e.begin_line, e.end_line, e.summary) for e in exercises] == [
        ("vclib.toy.add", 6, 8, "Add two numbers."), ("vclib.toy.scale", 14, 16, "Scale ``x`` by ``factor``.")]
    assert exercise_tests(toy_repo) == {"vclib.toy.add": ["test_toy.py::test_add"],
                                        "vclib.toy.scale": ["test_toy.py::test_scale"]}


def test_stripping_keeps_signature_and_docstring_and_raises(toy_repo):
    stripped = strip_solutions(TOY, find_exercises(toy_repo))
    assert "total = a + b" not in stripped and "x * factor" not in stripped and "SOLUTION" not in stripped
    namespace = {}
    exec(compile(stripped, "toy.py", "exec"), namespace)  # noqa: S102 - the stripped module must still compile
    assert namespace["add"].__doc__ == "Add two numbers."
    with pytest.raises(NotImplementedError, match="Exercise: Add two numbers."):
        namespace["add"](1, 2)


@pytest.mark.parametrize("text, problem", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "alternate"),
    ("def f():\n    ### END SOLUTION\n    x = 1\n    ### BEGIN SOLUTION\n", "alternate"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "inside a function"),
])
def test_bad_markers_are_named(tmp_path, text, problem):
    (tmp_path / "vclib").mkdir()
    (tmp_path / "vclib" / "bad.py").write_text(text)
    with pytest.raises(ValueError, match=rf"vclib/bad.py.*{problem}"):
        find_exercises(tmp_path)


def test_student_copy_scores_zero_solution_full_and_one_filled_exercise_exactly_its_points(toy_repo, tmp_path):
    assert {k: v["points"] for k, v in grade(toy_repo).items()} == {"vclib.toy.add": 10.0, "vclib.toy.scale": 10.0}
    copy = tmp_path / "student"
    write_student_copy(copy, toy_repo)
    assert {k: (v["tests"], v["points"]) for k, v in grade(copy).items()} == {
        "vclib.toy.add": (2, 0.0), "vclib.toy.scale": (1, 0.0)}
    stored = json.loads((copy / "grades.json").read_text())
    assert stored["vclib.toy.add"]["passed"] == 0
    notebook = json.loads((copy / "notebooks" / "P1_toy.ipynb").read_text())
    assert notebook["cells"][0]["outputs"] == [] and "widgets" not in notebook["metadata"]
    assert "vclib.toy.add" in (copy / "EXERCISES.md").read_text()
    filled = (copy / "vclib" / "toy.py").read_text().replace(
        'raise NotImplementedError("Exercise: Scale ``x`` by ``factor``.")', "return x * factor")
    (copy / "vclib" / "toy.py").write_text(filled)
    assert {k: v["points"] for k, v in grade(copy).items()} == {"vclib.toy.add": 0.0, "vclib.toy.scale": 10.0}


def test_student_copy_refuses_a_used_or_nested_folder(toy_repo, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "file").write_text("x")
    with pytest.raises(ValueError, match="out must be a new or empty folder"):
        write_student_copy(used, toy_repo)
    with pytest.raises(ValueError, match="out must lie outside the repository"):
        write_student_copy(toy_repo / "inside", toy_repo)


def test_grade_names_a_missing_repository_and_unknown_exercises(toy_repo, tmp_path):
    with pytest.raises(FileNotFoundError, match="vclib/ and tests/"):
        grade(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="vclib.toy.nothing"):
        grade(toy_repo, only=["vclib.toy.nothing"])
