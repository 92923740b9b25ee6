"""Command line: ``python -m vclib run | build | student | grade | papers | figures``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vclib import notebooks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vclib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute notebooks headless and write build/report.json")
    run.add_argument("notebooks", nargs="*", help="P1 ... P5 (default: all)")
    run.add_argument("--mode", choices=("quick", "full"), default="quick")
    run.add_argument("--inplace", action="store_true", help="store outputs in notebooks/ instead of build/")
    run.add_argument("--timeout", type=int, default=900, help="seconds one cell may compute")
    build = commands.add_parser("build", help="turn notebooks/sources/*.py into notebooks/*.ipynb")
    build.add_argument("notebooks", nargs="*", help="P1 ... P5 (default: all)")
    build.add_argument("--keep-outputs", action="store_true",
                       help="keep stored outputs of notebooks whose code cells are unchanged (markdown-only edits)")
    student = commands.add_parser("student", help="write the exercise edition (solutions removed) into OUT")
    student.add_argument("out", type=Path)
    grade = commands.add_parser("grade", help="run the exercise tests against a copy and score each exercise")
    grade.add_argument("path", nargs="?", type=Path, default=Path.cwd(), help="the copy to grade (default: here)")
    grade.add_argument("--exercise", action="append", help="grade only this exercise id (repeatable)")
    papers = commands.add_parser("papers", help="run the paper experiments and build paper_discussions/*.pdf")
    papers.add_argument("--no-experiments", action="store_true", help="rebuild the PDFs from the stored results")
    papers.add_argument("--only", type=int, nargs="+", choices=range(1, 7), metavar="N", help="only these papers (1-6)")
    figures = commands.add_parser("figures", help="draw the course figures into assets/ (and assets/manifest.json)")
    figures.add_argument("names", nargs="*", help="asset names such as 3_GRU.png (default: all)")
    figures.add_argument("--out", type=Path, help="folder to write into (default: assets/)")
    args = parser.parse_args(argv)
    if args.command == "build":
        for path in notebooks.build(args.notebooks, keep_outputs=args.keep_outputs):
            print(f"wrote {path.relative_to(notebooks.repository_root())}")
        return 0
    if args.command == "student":
        from vclib.student import write_student_copy

        exercises = write_student_copy(args.out, notebooks.repository_root())
        print(f"wrote the exercise edition to {args.out}: {len(exercises)} exercises, listed in EXERCISES.md")
        return 0
    if args.command == "papers":
        from vclib.papers import build_papers

        return build_papers(args.only, experiments=not args.no_experiments)
    if args.command == "figures":
        from vclib.figures import run as run_figures

        return run_figures(args.names or None, args.out)
    if args.command == "grade":
        from vclib.grading import grade, grades_table

        print(grades_table(grade(args.path, args.exercise)))
        return 0
    results = notebooks.run(args.notebooks, mode=args.mode, inplace=args.inplace, timeout=args.timeout)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
