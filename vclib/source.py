"""Show vclib source code inside a notebook, so students read exactly what the tests check."""

from __future__ import annotations

import inspect
from typing import Any


def show_source(obj: Any) -> None:
    """Display the source of a vclib function, class or module, syntax-highlighted.

    In a notebook it renders highlighted HTML (with a plain-text fallback); elsewhere it prints.
    """
    module = inspect.getmodule(obj)
    if module is None or not module.__name__.startswith("vclib"):
        raise ValueError(f"obj must be defined in vclib, got {obj!r}")
    source = inspect.getsource(obj)
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:  # pragma: no cover - IPython ships with jupyterlab
        print(source)
        return
    if get_ipython() is None:
        print(source)
        return
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    formatter = HtmlFormatter(noclasses=True, style="friendly")
    html = highlight(source, PythonLexer(), formatter)
    display({"text/html": HTML(html).data, "text/plain": source}, raw=True)
