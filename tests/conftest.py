"""Suite-wide fixtures: where the example files live. Subfolders add their own conftest.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text())


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
