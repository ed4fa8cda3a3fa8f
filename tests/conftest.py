"""Shared test fixtures: where the real media and the parity fixtures live.

`../shared/data` and `../shared/parity` sit beside the checkout in CI. On a user's machine they are
usually absent; tests that need them skip with a clear reason. Both locations can be overridden with
AVSSL_SHARED_DATA and AVSSL_PARITY_DIR.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _dir_from_env(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default.resolve()


SHARED_DATA = _dir_from_env("AVSSL_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")
PARITY_DIR = _dir_from_env("AVSSL_PARITY_DIR", REPO_ROOT.parent / "shared" / "parity")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real media (videos/, vas/, vggsound/, grid/, fsdd/, mnist5k/)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real media not found at {SHARED_DATA} (set AVSSL_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """Folder of parity fixtures computed with the original code."""
    if not PARITY_DIR.is_dir():
        pytest.skip(f"parity fixtures not found at {PARITY_DIR} (set AVSSL_PARITY_DIR)")
    return PARITY_DIR
