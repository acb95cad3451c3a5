"""Shared fixtures: the real test data beside the checkout and one loaded model per session."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need it skip when it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def rvm_session():
    """The default RVM model, loaded once (fetched into the cache on first use)."""
    from mattekit.models.rvm_onnx import RVMSession

    return RVMSession()
