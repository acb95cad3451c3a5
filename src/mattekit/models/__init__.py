"""Model registry, fetching and backends (one file per backend)."""

from mattekit.models.registry import DEFAULT_MODEL, MODELS, ModelSpec, get_spec
from mattekit.models.rvm_onnx import RVMSession, auto_downsample_ratio, new_session

__all__ = ["DEFAULT_MODEL", "MODELS", "ModelSpec", "RVMSession", "auto_downsample_ratio",
           "get_spec", "new_session"]
