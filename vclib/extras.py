"""Optional tooling: name the pip extra that provides a missing package instead of failing with ImportError."""

from __future__ import annotations

import importlib.util

#: Which extra of ``pip install "vclib[...]"`` provides each tool that the library itself does not need.
EXTRA_OF = {
    "nbclient": "dev",
    "nbformat": "dev",
    "jupytext": "dev",
    "ipykernel": "lab",
}


def require_extra(*modules: str, purpose: str) -> None:
    """Raise ``ModuleNotFoundError`` naming the extras to install when any of ``modules`` is missing.

    Args:
        modules: importable module names, e.g. ``"nbclient"``.
        purpose: what needs them, e.g. ``"python -m vclib run"``, for the message.
    """
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        extras = sorted({EXTRA_OF.get(name, "dev") for name in missing})
        raise ModuleNotFoundError(
            f"{purpose} needs {', '.join(missing)}, which the runtime install leaves out. "
            f'Install the tooling with: pip install "vclib[{",".join(extras)}]" (or `make install` in a clone).'
        )
