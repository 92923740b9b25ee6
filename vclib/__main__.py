"""Command line: ``python -m vclib run | build``."""

from __future__ import annotations

import argparse
import sys

from vclib import notebooks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vclib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute notebooks headless and write build/report.json")
    run.add_argument("notebooks", nargs="*", help="P1 ... P5 (default: all)")
    run.add_argument("--mode", choices=("quick", "full"), default="quick")
    run.add_argument("--inplace", action="store_true", help="store outputs in notebooks/ instead of build/")
    run.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell (quick mode needs far less)")
    build = commands.add_parser("build", help="turn notebooks/sources/*.py into notebooks/*.ipynb")
    build.add_argument("notebooks", nargs="*", help="P1 ... P5 (default: all)")
    args = parser.parse_args(argv)
    if args.command == "build":
        for path in notebooks.build(args.notebooks):
            print(f"wrote {path.relative_to(notebooks.repository_root())}")
        return 0
    results = notebooks.run(args.notebooks, mode=args.mode, inplace=args.inplace, timeout=args.timeout)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
