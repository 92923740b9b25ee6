"""Root pytest configuration: headless notebook runs (nbval) get no progress bars; the exercise marker."""

import os

os.environ.setdefault("VCLIB_PROGRESS", "0")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", 'exercise(id): the test grades this exercise of the student edition (python -m vclib grade)'
    )
