"""Matting models: one interface (:mod:`~mattekit.models.base`), one file per backend, a registry
saying which backend loads each named model, and :func:`new_session` to load one."""

from mattekit.models.base import Capabilities, MatteResult, ModelSession, SizePolicy
from mattekit.models.factory import new_session
from mattekit.models.registry import DEFAULT_MODEL, MODELS, ModelSpec, get_spec

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "Capabilities",
    "MatteResult",
    "ModelSession",
    "ModelSpec",
    "SizePolicy",
    "get_spec",
    "new_session",
]
