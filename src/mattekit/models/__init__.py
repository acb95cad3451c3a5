"""Model registry, fetching and backends (one file per backend)."""

from mattekit.models.registry import DEFAULT_MODEL, MODELS, ModelSpec, get_spec
from mattekit.models.rvm_onnx import RVMSession, new_session
from mattekit.params import auto_downsample_ratio  # the ratio rule lives with its validator

__all__ = ["DEFAULT_MODEL", "MODELS", "ModelSpec", "RVMSession", "auto_downsample_ratio",
           "get_spec", "new_session"]
