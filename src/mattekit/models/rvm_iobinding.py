"""Keep RVM's recurrent state on an accelerator between frames (ONNX Runtime I/O binding).

With a GPU execution provider, a plain ``session.run`` copies the four recurrent tensors
``r1o..r4o`` back to host memory after every frame and up again with the next one. Here they are
bound as device outputs and fed back as device inputs (``OrtValue``), so only the frame goes up
and ``fgr``/``pha`` come down. ONNX Runtime documents the technique in "I/O Binding"
(onnxruntime.ai/docs/api/python/api_summary.html#iobinding); RVM's own ONNX notes recommend it
for CUDA (github.com/PeterL1n/RobustVideoMatting, documentation/inference.md).

:func:`device_for` decides whether a session gets it (only when its first provider is a known
accelerator); :class:`BoundStepper` does the stepping. The CPU path never uses this module: there
the state already lives in host memory and ``session.run`` is simpler.
"""

from __future__ import annotations

import numpy as np

# execution provider -> ONNX Runtime device name of its memory (for OrtValue / bind_output)
DEVICE_OF_PROVIDER = {
    "CUDAExecutionProvider": "cuda",
}
STATE_INPUTS = ("r1i", "r2i", "r3i", "r4i")
STATE_OUTPUTS = ("r1o", "r2o", "r3o", "r4o")


def device_for(providers: list[str]) -> str | None:
    """The device to keep the recurrent state on, or ``None`` to use plain ``run``.

    Args:
        providers: the session's providers in priority order (``session.get_providers()``).

    Returns:
        ``"cuda"`` when the first (preferred) provider is CUDA, else ``None`` (CPU, or a provider
        whose memory this module does not know).
    """
    return DEVICE_OF_PROVIDER.get(providers[0]) if providers else None


class BoundStepper:
    """Run RVM one frame at a time with the recurrent state bound on ``device``.

    Args:
        session: an ``onnxruntime.InferenceSession`` of an RVM model.
        device: ONNX Runtime device name (``"cuda"``; ``"cpu"`` works too and is what the tests
            use on machines without a GPU).
        device_id: device index.

    The state returned by :meth:`step` is a tuple of four ``onnxruntime.OrtValue`` on
    ``device``; pass it to the next :meth:`step` as it is. A first frame may pass numpy zeros
    (``RVMSession.initial_state()``). One stepper may serve several threads: each call makes its
    own binding.
    """

    def __init__(self, session, device: str, device_id: int = 0):
        self._session = session
        self.device = device
        self.device_id = device_id

    def step(self, src: np.ndarray, state, downsample_ratio: float):
        """One network step.

        Args:
            src: N×3×H×W float32 RGB in 0..1 on the host.
            state: four numpy arrays (first frame) or the ``OrtValue`` s of the previous step.
            downsample_ratio: ratio in (0, 1].

        Returns:
            ``(fgr, pha, state)``: fgr N×3×H×W and pha N×1×H×W float32 numpy arrays on the host,
            and the new state (four ``OrtValue`` on the device).
        """
        binding = self._session.io_binding()
        binding.bind_cpu_input("src", np.ascontiguousarray(src, dtype=np.float32))
        binding.bind_cpu_input("downsample_ratio", np.asarray([downsample_ratio], dtype=np.float32))
        for name, value in zip(STATE_INPUTS, state, strict=True):
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, value)
            else:
                binding.bind_ortvalue_input(name, value)
        binding.bind_output("fgr", "cpu")
        binding.bind_output("pha", "cpu")
        for name in STATE_OUTPUTS:
            binding.bind_output(name, self.device, self.device_id)
        self._session.run_with_iobinding(binding)
        fgr, pha, *new_state = binding.get_outputs()
        return fgr.numpy(), pha.numpy(), tuple(new_state)
