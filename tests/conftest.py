"""Shared fixtures: the real test data beside the checkout, one loaded real model per session and
the fake model (for pipeline mechanics: threads, ordering, cancellation, outputs, server)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from media import SHARED_DATA

# .ci/run sets it: there a missing data folder fails the run instead of skipping its tests
REQUIRE_DATA = os.environ.get("MATTEKIT_REQUIRE_DATA") == "1"
WHERE = "../shared/data beside the checkout, or set MATTEKIT_TEST_DATA"
SLOW_MODULE = re.compile(r"^pytestmark = .*\bpytest\.mark\.slow\b", re.MULTILINE)


def pytest_report_header(config) -> str:
    state = "found" if SHARED_DATA.is_dir() else f"MISSING: the tests that need it are skipped ({WHERE})"
    return f"mattekit test data: {SHARED_DATA} ({state})"


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """Under ``-m "not slow ..."`` (``make test-fast``), do not even import a test module marked slow as
    a whole (``pytestmark = ... pytest.mark.slow``): the training and Ray modules import torch and ray,
    several seconds before the first test runs."""
    if "not slow" not in (config.getoption("markexpr") or "") or not collection_path.name.startswith("test_"):
        return None
    if collection_path.suffix == ".py" and SLOW_MODULE.search(collection_path.read_text(encoding="utf-8")):
        return True
    return None


def pytest_sessionstart(session) -> None:
    if REQUIRE_DATA and not SHARED_DATA.is_dir():
        pytest.exit(f"test data not found at {SHARED_DATA} ({WHERE})", returncode=1)


def pytest_terminal_summary(terminalreporter) -> None:
    """One line saying how many tests the missing data skipped (``-ra`` lists each one below it)."""
    if SHARED_DATA.is_dir():
        return
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if str(SHARED_DATA) in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(
            f"mattekit: {len(skipped)} skipped (tests, or whole modules) because the test "
            f"data is missing at {SHARED_DATA} ({WHERE})",
            yellow=True,
            bold=True,
        )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real test data (``SHARED_DATA``); tests that need it skip when it is missing."""
    if not SHARED_DATA.is_dir():
        message = f"test data not found at {SHARED_DATA}"
        if REQUIRE_DATA:
            pytest.fail(message)
        pytest.skip(message)
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
