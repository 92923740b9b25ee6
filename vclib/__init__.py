"""Deep Learning for Visual Computing: the tested library behind the course notebooks.

Every notebook starts with ``cfg = vclib.setup()`` and shows the code it uses with
``vclib.show_source(obj)``.
"""

from vclib.session import Config, setup
from vclib.source import show_source

__all__ = ["Config", "setup", "show_source"]
__version__ = "0.1.0"
