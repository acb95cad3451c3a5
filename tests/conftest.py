"""Shared fixtures: the real test data beside the checkout, one loaded real model per session and
the fake model (for pipeline mechanics: threads, ordering, cancellation, outputs, server)."""

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
    from mattekit.models import new_session

    return new_session()


@pytest.fixture(scope="session")
def fake_session():
    """The fake model (:mod:`mattekit.models.fake`): alpha from luma, no network, no download."""
    from mattekit.models import new_session

    return new_session("fake")


@pytest.fixture
def torch_one_thread():
    """PyTorch on one thread for the test (the training tests; two cores are shared with other work)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
