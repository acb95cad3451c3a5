"""The optional parts of mattekit and the extra that installs each.

The core install (``pip install mattekit``) mattes videos and images from the command line and
the Python API, runs the classical trimap methods, the metrics and the keyer. The rest is chosen
with extras (pyproject.toml ``[project.optional-dependencies]``): ``server`` (``mattekit serve``),
``int8`` (building the INT8 copy of RVM), ``demo`` (``mattekit demo``), ``ray`` (``--executor
ray``), ``train`` (``mattekit train`` / ``finetune``) and ``test``. A verb or function that needs
an extra calls :func:`require` before importing it, so a missing extra is one line naming the
command to run, not a traceback.
"""

from __future__ import annotations

import importlib.util
import sys

from mattekit.errors import MattekitError

#: extra -> the modules it provides that mattekit imports (import names, not package names)
EXTRAS: dict[str, tuple[str, ...]] = {
    "server": ("fastapi", "uvicorn", "python_multipart"),
    "int8": ("skimage",),
    "demo": ("skimage",),
    "ray": ("ray",),
    "train": ("torch", "torchvision"),
}

#: CLI verb -> the extra the whole verb needs
VERB_EXTRAS: dict[str, str] = {"serve": "server", "demo": "demo", "train": "train", "finetune": "train"}


class MissingExtra(MattekitError):
    """A feature needs an extra that is not installed; the message says how to install it."""

    def __init__(self, extra: str, feature: str):
        self.extra = extra
        self.feature = feature
        super().__init__(f"{feature} needs the {extra} extra: {install_hint(extra)}")


def install_hint(extra: str) -> str:
    """The command that installs ``extra``: ``pip install 'mattekit[EXTRA]'``."""
    return f"pip install 'mattekit[{extra}]'"


def _importable(module: str) -> bool:
    if module in sys.modules:  # None there means "import fails" (what tests use to hide a module)
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (found without importing them).

    Raises:
        KeyError: ``extra`` is not one of :data:`EXTRAS`.
    """
    return [module for module in EXTRAS[extra] if not _importable(module)]


def require(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtra` unless every module of ``extra`` can be imported.

    Args:
        extra: a key of :data:`EXTRAS`.
        feature: what needs it, as the user would name it (``"mattekit serve"``).

    Raises:
        MissingExtra: ``"<feature> needs the <extra> extra: pip install 'mattekit[<extra>]'"``.
    """
    if missing(extra):
        raise MissingExtra(extra, feature)
