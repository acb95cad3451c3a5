"""``new_session``: turn a model name, an ONNX path or a session into the right backend."""

from __future__ import annotations

import os
from pathlib import Path

from mattekit.errors import InputError, ModelError
from mattekit.models.base import ModelSession


def new_session(
    model: str | os.PathLike | ModelSession | None = None,
    *,
    precision: str | None = None,
    card=None,
    providers: list[str] | None = None,
    intra_op_threads: int | None = None,
    **options,
) -> ModelSession:
    """Load a matting model, or return ``model`` if it is already a session.

    Args:
        model: ``None`` (the default model, ``rvm-mobilenetv3``), a registered name (``mattekit
            models list``), a path to an ``.onnx`` file, or a :class:`ModelSession`.
        precision: ``None`` (as published) or one of the model's precisions (e.g. ``"int8"``; see
            :func:`mattekit.models.fetch.resolve_precision`); an RVM export given by path may
            also be run at ``"int8"`` (its quantized copy is built into the model cache, never
            beside the file).
        card: for an ONNX path, its model card (shipped name, TOML path or dict; see
            :mod:`mattekit.models.card`); default ``<model>.toml`` beside the file. Without a card,
            a file with Robust Video Matting's signature (MobileNetV3 or ResNet50 export) loads
            as RVM.
        providers, intra_op_threads: ONNX Runtime settings (see
            :func:`mattekit.models.base.load_onnx`).
        options: extra keyword arguments for the backend (e.g. ``seconds_per_frame`` of ``fake``).

    Returns:
        A :class:`ModelSession` (``.name``, ``.capabilities``, ``.step``, ``.initial_state``;
        ``.path`` the file loaded, ``.source_path`` the file as given or fetched, which outputs
        may never overwrite).

    Raises:
        mattekit.errors.ModelError: unknown name or precision, fetch failure, a file without a card
            and not RVM, an invalid card, or a file ONNX Runtime cannot load.
        mattekit.errors.InputError: a path was given and the file does not exist.
        mattekit.errors.ParameterTypeError: ``model`` is none of the above (e.g. a number).
    """
    from mattekit.models.fetch import resolve_precision
    from mattekit.models.registry import DEFAULT_MODEL, MODELS, get_spec, load_object

    _check_type(model)
    if isinstance(model, ModelSession):
        if precision is not None and precision != getattr(model, "precision", precision):
            raise ModelError(f"{model.name}: already loaded at precision {model.precision}, not {precision}")
        return model
    text = os.fspath(model) if model is not None else DEFAULT_MODEL
    kwargs = dict(providers=providers, intra_op_threads=intra_op_threads, **options)
    if text in MODELS:
        spec, path, source = resolve_precision(get_spec(text), precision)
        session = load_object(spec.backend)(path, **kwargs)
        session.name, session.precision, session.source_path = text, precision or spec.precision, source
        session.license, session.source = spec.license, spec.source
        return session
    path = _local_file(text)
    from mattekit.models.card import card_beside

    card = card if card is not None else card_beside(path)
    if card is not None:
        from mattekit.models.card_onnx import CardSession

        if precision not in (None, "fp32"):
            raise ModelError(f"{path}: a model with a card runs as it is (no precision {precision!r})")
        session = CardSession(path, card, **kwargs)
    else:
        from mattekit.models.rvm_onnx import RVMSession, is_rvm_signature

        inputs, outputs = graph_names(path)
        if not is_rvm_signature(inputs, outputs):
            raise ModelError(
                f"{path}: no model card (put {path.with_suffix('.toml').name} beside it, "
                f"see docs/models.md) and not an RVM export (inputs: {', '.join(inputs)})"
            )
        rvm = MODELS["rvm-mobilenetv3"]  # an RVM export runs at the precisions of the registered RVM
        if precision not in (None, *rvm.precisions):
            raise ModelError(
                f"{path}: an RVM export has no precision {precision!r} (known: {', '.join(rvm.precisions)})"
            )
        variant = rvm.variants.get(precision) if precision else None
        session = RVMSession(load_object(variant)(path) if variant else path, **kwargs)
    session.precision, session.source_path = precision or "fp32", path
    return session


def model_file(model: str | os.PathLike | None = None) -> Path:
    """The ONNX file of a registered model (fetched into the cache on first use) or of a path.

    Raises:
        mattekit.errors.ModelError: unknown name, a model without a file, or the fetch fails.
        mattekit.errors.InputError: a path was given and the file does not exist.
    """
    from mattekit.models.fetch import fetch
    from mattekit.models.registry import DEFAULT_MODEL, MODELS

    _check_type(model)
    text = os.fspath(model) if model is not None else DEFAULT_MODEL
    return fetch(text) if text in MODELS else _local_file(text)


def _check_type(model) -> None:
    if model is not None and not isinstance(model, (str, os.PathLike, ModelSession)):
        from mattekit.errors import ParameterTypeError

        raise ParameterTypeError(
            "model", f"must be a model name, an .onnx path or a ModelSession, not {model!r} ({type(model).__name__})"
        )


def _local_file(text: str) -> Path:
    """``text`` as an existing model file; a word that is no path is taken as an unknown name."""
    from mattekit.io.sniff import refuse_special
    from mattekit.models.registry import get_spec

    path = Path(text).expanduser()
    if not (path.suffix.lower() == ".onnx" or path.exists() or os.sep in text):
        get_spec(text)  # raises ModelError naming the known models
    refuse_special(path)
    if path.is_dir():
        raise InputError(path, "is a folder, not a model file")
    if not path.is_file():
        raise InputError(path, "model file not found")
    return path


def graph_names(path: Path) -> tuple[list[str], list[str]]:
    """The input and output names of an ONNX file's graph (parsed with the onnx package).

    Raises:
        mattekit.errors.ModelError: not an ONNX file.
    """
    import onnx

    try:
        if path.stat().st_size == 0:
            raise ModelError(f"{path}: not an ONNX model (the file is empty, 0 bytes)")
        model = onnx.load(str(path), load_external_data=False)
    except ModelError:
        raise
    except Exception as exc:  # protobuf raises several unrelated types
        from mattekit.models.base import first_line

        raise ModelError(f"{path}: not an ONNX model ({first_line(exc)})") from None
    if not model.graph.node and not model.graph.input:  # bytes protobuf reads as an empty message
        raise ModelError(f"{path}: not an ONNX model (it holds no graph)")
    initializers = {t.name for t in model.graph.initializer}
    return ([i.name for i in model.graph.input if i.name not in initializers], [o.name for o in model.graph.output])
