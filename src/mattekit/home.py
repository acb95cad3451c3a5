"""Where mattekit keeps its own files: ``$MATTEKIT_HOME``, else the platform's per-user cache folder.

At the bottom of the layers, because both the model cache (:mod:`mattekit.models.cache`) and the
output checks (:mod:`mattekit.io.atomic`, which refuse to write a user's output into the model
cache) need to name the folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_path() -> Path:
    """The model cache folder, not created: ``$MATTEKIT_HOME/models`` when the environment
    variable is set, else the platform's per-user cache folder for mattekit
    (``~/.cache/mattekit/models`` on Linux)."""
    home = os.environ.get("MATTEKIT_HOME")
    if home:
        root = Path(home).expanduser()
    else:
        from platformdirs import user_cache_dir

        root = Path(user_cache_dir("mattekit"))
    return root / "models"
