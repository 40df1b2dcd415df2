"""Registers the `fault` marker on this branch (the fault suite's own conftest replaces this file)."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fault: fault-injection suite")
