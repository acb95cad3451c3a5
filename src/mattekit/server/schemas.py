"""The JSON shapes of the HTTP API (they also document it in the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """Every error response: what went wrong, in one sentence, and a short code."""

    detail: str = Field(description="one sentence saying what was wrong")
    code: str = Field(description="machine-readable reason, e.g. too_large, unsupported_media")


class ProgressOut(BaseModel):
    frames_done: int
    frames_total: int | None = Field(None, description="frames expected, when known")
    fraction: float | None = Field(None, description="0..1")
    fps: float | None = Field(None, description="frames per second since the job started")
    eta_seconds: float | None = Field(None, description="estimated seconds left")


class OutputOut(BaseModel):
    name: str = Field(description="file name, e.g. composition.mp4")
    kind: str = Field(description="composition | alpha | foreground")
    media_type: str
    bytes: int
    url: str = Field(description="download address")


class JobOut(BaseModel):
    id: str
    kind: str = Field(description="image | video")
    state: str = Field(description="queued | running | done | failed | cancelled")
    filename: str = Field(description="the uploaded file's name")
    created: float = Field(description="unix time, seconds")
    started: float | None = None
    finished: float | None = None
    options: dict[str, Any]
    media: dict[str, Any] = Field(description="input width, height, frames, fps")
    progress: ProgressOut
    outputs: list[OutputOut]
    input_url: str
    error: str | None = Field(None, description="why the job failed")
    note: str | None = Field(None, description="e.g. re-queued after a server restart")
    warning: str | None = Field(
        None,
        description="a done job's problem that did not stop it, e.g. "
        "frames lost to a damaged input (frames_done then counts the frames written)",
    )
    cancel_requested: bool
    attempts: int
    warnings: list[str] = Field(
        default_factory=list,
        description="in the answer to the request that "
        "created the job: the deprecated words it used (with Deprecation: true)",
    )


class DamagedOut(BaseModel):
    id: str
    problem: str = Field(description="why the stored row is not a job")


class JobListOut(BaseModel):
    jobs: list[JobOut]
    damaged: list[DamagedOut] = Field(
        default_factory=list, description="rows of this page skipped because they are damaged"
    )


class ModelOut(BaseModel):
    """A model a request may choose with the ``model`` field."""

    name: str
    kind: str
    precision: str
    license: str
    description: str


class HealthOut(BaseModel):
    status: str
    version: str
    queued: int
    running: int
    video_workers: int
    image_workers: int
    model_loaded: bool
    outputs: list[str] = Field(description="the values of the output field")
    output_types: list[str] = Field(description="the values of the output_type field (videos)")
    backgrounds: list[str] = Field(description="color (a colour name or #rrggbb) and the words of the background field")
    default_model: str
    models: list[ModelOut]
