"""The settings of one server (:class:`ServerConfig`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class ServerConfig:
    """Settings of one server.

    Attributes:
        data_dir: folder for the database, uploads and job files.
        max_upload_bytes: limit on one request body (the upload plus its form).
        max_pixels: largest accepted image or video frame, width × height.
        video_workers, image_workers: worker threads per lane; ``None`` sizes them for the machine.
        sync_threads: images matted at once by ``POST /api/matte``; ``None``: one per two cores.
        sync_queue: ``POST /api/matte`` requests allowed to wait; more get 503.
        model: ``None``, a registered model name, an ONNX path, or a ``ModelSession``.
        allowed_hosts: host names the ``Host`` header may carry (``None``: any). ``serve`` lists
            this machine's own names and addresses only (see
            :func:`mattekit.server.security.machine_names`), so a web page whose domain is made to
            resolve to this machine (DNS rebinding) cannot use it.
        token: an access token every request must carry (``None``: none); see
            :mod:`mattekit.server.security`.
        image_slots: full-size images matted at once (image jobs and ``POST /api/matte``
            together); the memory bound of the server grows with it.
        upload_idle_seconds: an upload that sends nothing for this long is abandoned (408).
    """

    data_dir: Path
    max_upload_bytes: int = 2 * 1024**3
    max_pixels: int = 40_000_000
    video_workers: int | None = None
    image_workers: int | None = None
    sync_threads: int | None = None
    sync_queue: int = 64
    model: object = None
    allowed_hosts: tuple[str, ...] | None = None
    token: str | None = None
    image_slots: int = 1
    upload_idle_seconds: float = 120.0
