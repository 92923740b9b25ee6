"""Root pytest configuration: headless notebook runs (nbval) get no progress bars."""

import os

os.environ.setdefault("VCLIB_PROGRESS", "0")
