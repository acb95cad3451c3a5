"""Training checkpoints: model, optimizer, step and loss history in one file, written atomically.

``<checkpoint_dir>/last.pt`` is replaced after every save (temporary name, then rename), so a
kill at any moment leaves the previous complete checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mattekit.errors import InputError
from mattekit.io.atomic import discard, temp_sibling


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` (tensors, numbers, lists, dicts) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_sibling(path)
    try:
        torch.save(state, temp)
        os.replace(temp, path)
    except BaseException:
        discard(temp)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors only, no pickled code).

    Raises:
        mattekit.errors.InputError: missing or not a mattekit checkpoint.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "checkpoint not found")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types on bad files
        raise InputError(p, f"not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise InputError(p, "not a mattekit training checkpoint")
    return state
