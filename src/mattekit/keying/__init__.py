"""Green- and blue-screen keying with FFmpeg's own keying filters (through PyAV's filter graph).

``key_color`` picks the screen colour and the filter thresholds from a frame's border;
``key_filter`` runs ``chromakey``/``hsvkey`` + ``despill`` (or ``backgroundkey`` against a clean
plate) on RGB frames; ``key_video`` keys a whole clip into any transparent type mattekit writes.
The result is a foreground + alpha source for compositing and for training data
(:mod:`mattekit.train.dataset`).
"""

from mattekit.keying.key_color import KeySettings, pick_key_settings
from mattekit.keying.key_filter import KeyFilter
from mattekit.keying.key_video import key_video

__all__ = ["KeyFilter", "KeySettings", "key_video", "pick_key_settings"]
