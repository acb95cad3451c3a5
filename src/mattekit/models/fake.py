"""A fake model for tests: deterministic, tiny, no file, no download, no neural network.

Registered as ``fake`` (hidden from ``mattekit models list``). It behaves like a recurrent video
model so the pipeline's threading, ordering, cancellation, outputs and the server can be tested in
seconds:

* alpha is a fixed function of each frame alone: ``clip((Y - 0.25) * 2, 0, 1)`` with the Rec. 601
  luma ``Y = 0.299 R + 0.587 G + 0.114 B`` (so a test can recompute the expected alpha of frame
  ``i`` from input frame ``i`` and see that no frame was dropped, repeated or reordered);
* fgr is the frame's own colour;
* the state is the number of frames stepped so far in this video (``step`` checks that it is an
  int, so a state lost or shared between videos shows up).
"""

from __future__ import annotations

import time

import numpy as np

from mattekit.models.base import Capabilities, MatteResult, ModelSession, SizePolicy

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def fake_alpha(src: np.ndarray) -> np.ndarray:
    """The fake model's alpha of N×3×H×W float32 RGB 0..1 frames: N×1×H×W float32 in 0..1."""
    luma = np.tensordot(LUMA, src, axes=([0], [1]))[:, None]
    return np.clip((luma - np.float32(0.25)) * np.float32(2.0), 0.0, 1.0).astype(np.float32)


class FakeSession(ModelSession):
    """The fake model (see the module docstring).

    Args:
        path: ignored (the fake model has no file).
        providers, intra_op_threads: ignored.
        seconds_per_frame: sleep this long per frame in :meth:`step` (to test a slow network).
    """

    capabilities = Capabilities(recurrent=True, predicts_fgr=True, size_policy=SizePolicy("long_side", 512))
    name = "fake"
    license = "GPL-3.0-or-later"
    source = "mattekit (test-only)"

    def __init__(self, path=None, providers=None, intra_op_threads=None, seconds_per_frame: float = 0.0):
        self.seconds_per_frame = seconds_per_frame
        self.path = None

    def initial_state(self) -> int:
        """No frame seen yet: 0."""
        return 0

    def step(
        self, src: np.ndarray, state: int, downsample_ratio: float | None, release_memory: bool = False
    ) -> MatteResult:
        """Alpha from luma, fgr = the frame, state = frames seen (see the module docstring).

        Raises:
            TypeError: ``state`` is not a frame count from this model.
        """
        if not isinstance(state, int) or isinstance(state, bool) or state < 0:
            raise TypeError(f"fake model: state must be a frame count, not {state!r}")
        if self.seconds_per_frame:
            time.sleep(self.seconds_per_frame * src.shape[0])
        return MatteResult(pha=fake_alpha(src), fgr=src.copy(), state=state + src.shape[0])
