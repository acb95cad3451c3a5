"""The training loop of one stage (RVM's ``train.py``, written for one process on CPU/CUDA/MPS).

Each step: a low-resolution matting pass (downsample ratio 1, no guided filter), a high-resolution
pass when the stage has one (guided filter on), and a segmentation pass when segmentation data is
given; Adam with one learning rate per part of the network (RVM, Sec. 4.3). Samples depend only on
``(seed, step)`` (:mod:`mattekit.train.dataset.compositing`), and the model and optimizer are
restored from ``last.pt``, so a run stopped by Ctrl-C, SIGTERM or a kill and started again
continues the same loss curve (from the last checkpoint after a kill).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mattekit.errors import Cancelled, InputError
from mattekit.train.checkpoint import load_checkpoint, save_checkpoint
from mattekit.train.config import StageConfig
from mattekit.train.dataset import (
    CompositingDataset,
    SegmentationDataset,
    SegmentationSource,
    ValidationClip,
    open_backgrounds,
    open_foreground,
)
from mattekit.train.device import select_device
from mattekit.train.loss import matting_loss, segmentation_loss
from mattekit.train.memory import check_step_memory
from mattekit.train.model import MattingNetwork

# settings a resumed run may change; any other difference means another experiment
RESUMABLE_CHANGES = {"steps", "epochs", "checkpoint_every", "validate_every", "device", "checkpoint_dir"}
VALIDATION_METRICS = ("MAD", "MSE", "Grad", "dtSSD")


@dataclass
class StepReport:
    """Progress after one step: ``step`` of ``total`` done, its total matting loss, the decoder's
    learning rate and the steps per second since the run (or resume) started."""

    step: int
    total: int
    loss: float
    lr: float
    steps_per_second: float


@dataclass
class RunResult:
    """A finished (or resumed and finished) stage."""

    model: MattingNetwork
    steps: int
    seconds: float
    losses: list[float]
    validation: dict[int, dict[str, float]] = field(default_factory=dict)
    checkpoint: Path | None = None
    validation_clip: ValidationClip | None = None


def build_model(config: StageConfig) -> MattingNetwork:
    """A MattingNetwork initialised as ``config.init`` says (see :class:`StageConfig`)."""
    torch.manual_seed(config.seed)
    init = config.init
    if init == "scratch":
        return MattingNetwork(config.variant)
    if init.endswith(".pt"):
        model = MattingNetwork(config.variant)
        state = load_checkpoint(init)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError:
            raise InputError(init, f"checkpoint does not fit the {config.variant} network") from None
        return model
    from mattekit.train.onnx_import import pretrained

    return pretrained(init, config.variant)


def set_train_mode(model: MattingNetwork, freeze_batchnorm: bool) -> None:
    """Training mode; batch norms stay in eval mode (fixed statistics) when frozen."""
    model.train()
    if freeze_batchnorm:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


def make_optimizer(model: MattingNetwork, config: StageConfig) -> torch.optim.Adam:
    """Adam with RVM's parameter groups (backbone, context module, decoder + heads, refiner)."""
    groups = [
        (list(model.backbone.parameters()), config.lr_backbone),
        (list(model.aspp.parameters()), config.lr_aspp),
        (
            list(model.decoder.parameters())
            + list(model.project_mat.parameters())
            + list(model.project_seg.parameters()),
            config.lr_decoder,
        ),
        (list(model.refiner.parameters()), config.lr_refiner),
    ]
    return torch.optim.Adam([{"params": p, "lr": lr} for p, lr in groups])


def random_crop(rng: np.random.Generator, side: int, *clips: torch.Tensor) -> list[torch.Tensor]:
    """RVM's crop: a random height and width between half and all of ``side`` (at least 64), the
    clips resized to cover it and centre-cropped. Clips B×T×C×H×W."""
    h = int(rng.integers(max(64, side // 2), side + 1))
    w = int(rng.integers(max(64, side // 2), side + 1))
    out = []
    for clip in clips:
        b, t = clip.shape[:2]
        frames = clip.flatten(0, 1)
        s = max(h, w)
        frames = torch.nn.functional.interpolate(frames, size=(s, s), mode="bilinear", align_corners=False)
        top, left = (s - h) // 2, (s - w) // 2
        out.append(frames[:, :, top : top + h, left : left + w].unflatten(0, (b, t)))
    return out


def split_data(config: StageConfig, max_side: int):
    """(training foregrounds, held-back foregrounds, training backgrounds, held-back backgrounds).

    Each foreground's last ``validation_fraction`` of frames is held back (at least 2 frames when
    the fraction is above 0, so dtSSD is defined); the last ``validation_backgrounds`` backgrounds
    are held back when there are more backgrounds than that.
    """
    sources = [open_foreground(p, max_side) for p in config.foreground]
    train_fg, held_fg = [], []
    for source in sources:
        held = 0 if config.validation_fraction <= 0 else max(2, round(source.length * config.validation_fraction))
        if held and source.length - held < 1:
            raise InputError(source.name, f"{source.length} frames are too few to hold back {held} for validation")
        train_fg.append(source.subset(0, source.length - held))
        if held:
            held_fg.append(source.subset(source.length - held, source.length))
    backgrounds = open_backgrounds(config.backgrounds, max_side)
    held_bg = config.validation_backgrounds if len(backgrounds) > config.validation_backgrounds else 0
    train_bg, val_bg = backgrounds.split(held_bg)
    return train_fg, held_fg, train_bg, (val_bg if held_bg else train_bg)


@torch.no_grad()
def validate(model: MattingNetwork, clip: ValidationClip, device: torch.device) -> dict[str, float]:
    """Matte the held-back clip (recurrent state carried) and score it with mattekit.metrics
    (RVM's scaling: MAD and MSE ×1e3, Grad ×1e-3, dtSSD ×1e2)."""
    from mattekit.metrics import video_metrics

    was_training = model.training
    model.eval()
    src = (clip.fgr * clip.pha + clip.bgr * (1 - clip.pha)).unsqueeze(0).to(device)
    _, pha, *_ = model(src, downsample_ratio=1.0, refine=False)
    model.train(was_training)
    pred = pha[0, :, 0].float().cpu().numpy()
    return video_metrics(pred, clip.pha[:, 0].numpy(), metrics=VALIDATION_METRICS)


class _StopSignals:
    """Turn Ctrl-C and SIGTERM into a flag checked between steps (main thread only); a second
    one interrupts at once."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup / background jobs stay as they are
                    self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:  # asked twice: stop now, the last saved checkpoint stays
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def total_steps(config: StageConfig, train_fg) -> int:
    """``config.steps``, or ``epochs`` passes over the training frames in clips of ``seq_length_lr``."""
    if config.steps:
        return config.steps
    frames = sum(s.length for s in train_fg)
    return max(1, math.ceil(config.epochs * frames / (config.seq_length_lr * config.batch_size)))


def run_stage(
    config: StageConfig,
    on_step: Callable[[StepReport], None] | None = None,
    resume: bool = True,
    validation_size: tuple[int, int] | None = None,
    stop_after: int | None = None,
) -> RunResult:
    """Train one stage; return the model and the loss history.

    Args:
        config: the stage (checked first).
        on_step: called after every step with a :class:`StepReport`.
        resume: continue from ``<checkpoint_dir>/last.pt`` when it exists (else start over,
            replacing it at the first save).
        validation_size: (height, width) of the validation clip (default: the training side, 16:9).
        stop_after: end (with a checkpoint) after this step, as if stopped by a signal; for tests.

    Raises:
        ValueError: a bad setting, or one step that cannot fit in memory (:mod:`mattekit.train.memory`).
        mattekit.errors.InputError: unreadable data or checkpoint, or a checkpoint from other settings.
        mattekit.errors.Cancelled: stopped by Ctrl-C/SIGTERM after saving a checkpoint.
    """
    config.check()
    device = select_device(config.device)
    side = max(config.resolution_lr, config.resolution_hr)
    train_fg, held_fg, train_bg, val_bg = split_data(config, max_side=2 * side)
    check_step_memory(config, device.type)  # after the data is found: input errors come first
    steps = total_steps(config, train_fg)
    data_lr = CompositingDataset(train_fg, train_bg, (config.resolution_lr,) * 2, config.seq_length_lr, config.seed)
    data_hr = (
        CompositingDataset(train_fg, train_bg, (config.resolution_hr,) * 2, config.seq_length_hr, config.seed + 1)
        if config.resolution_hr
        else None
    )
    data_seg = (
        SegmentationDataset(
            [SegmentationSource.open(p, 2 * side) for p in config.segmentation],
            (config.resolution_lr,) * 2,
            config.seq_length_lr,
            config.seed + 2,
        )
        if config.segmentation
        else None
    )
    val_size = validation_size or (config.resolution_lr * 9 // 16 // 16 * 16, config.resolution_lr)
    val_clip = ValidationClip(held_fg[0], val_bg, val_size) if held_fg else None

    checkpoint = Path(config.checkpoint_dir) / "last.pt"
    state = load_checkpoint(checkpoint) if resume and checkpoint.exists() else None
    if state is not None:
        stored = state.get("config", {})
        changed = sorted(k for k, v in config.as_dict().items() if k not in RESUMABLE_CHANGES and stored.get(k) != v)
        if changed:
            raise InputError(
                checkpoint,
                f"was made with other settings ({', '.join(changed)}); use another checkpoint folder or start over",
            )
    model = build_model(config) if state is None else MattingNetwork(config.variant)
    optimizer = make_optimizer(model, config)
    start, losses, history = 0, [], {}
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, losses = int(state["step"]), list(state["losses"])
        history = {int(k): v for k, v in state.get("validation", {}).items()}
    model.to(device)
    for group in optimizer.state.values():
        for key, value in group.items():
            if torch.is_tensor(value) and key != "step":
                group[key] = value.to(device)

    def save(step: int) -> None:
        save_checkpoint(
            checkpoint,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "losses": losses,
                "validation": {str(k): v for k, v in history.items()},
                "config": config.as_dict(),
            },
        )

    if val_clip is not None and 0 not in history and start == 0:
        history[0] = validate(model, val_clip, device)
    set_train_mode(model, config.freeze_batchnorm)
    started = time.perf_counter()
    step = start
    with _StopSignals() as signals:
        while step < steps:
            rng = np.random.default_rng([config.seed, 7, step])
            fgr, pha, bgr = random_crop(
                rng, config.resolution_lr, *data_lr.batch(step * config.batch_size, config.batch_size)
            )
            loss = _matting_step(model, optimizer, fgr.to(device), pha.to(device), bgr.to(device), 1.0)
            if data_hr is not None:
                hr = [t.to(device) for t in data_hr.batch(step * config.batch_size, config.batch_size)]
                fgr, pha, bgr = hr
                _matting_step(model, optimizer, fgr, pha, bgr, config.downsample_ratio_hr)
            if data_seg is not None:
                image, mask = random_crop(
                    rng, config.resolution_lr, *data_seg.batch(step * config.batch_size, config.batch_size)
                )
                pred = model(image.to(device), segmentation_pass=True)[0]
                seg = segmentation_loss(pred, mask.to(device))
                seg.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            losses.append(loss)
            step += 1
            if val_clip is not None and config.validate_every and step % config.validate_every == 0:
                history[step] = validate(model, val_clip, device)
            if on_step is not None:
                elapsed = time.perf_counter() - started
                on_step(
                    StepReport(
                        step,
                        steps,
                        loss,
                        optimizer.param_groups[2]["lr"],
                        (step - start) / elapsed if elapsed > 0 else 0.0,
                    )
                )
            stopping = signals.signum is not None or (stop_after is not None and step >= stop_after and step < steps)
            if stopping or (config.checkpoint_every and step % config.checkpoint_every == 0) or step == steps:
                if step == steps and val_clip is not None and step not in history:
                    history[step] = validate(model, val_clip, device)
                save(step)
            if stopping:
                cancelled = Cancelled(
                    f"stopped at step {step} of {steps}; checkpoint {checkpoint}; run the same command again to resume"
                )
                if signals.signum is not None and signals.signum != signal.SIGINT:
                    cancelled.exit_code = 128 + signals.signum  # as a shell reports it (SIGTERM: 143)
                raise cancelled
    if val_clip is not None and steps not in history:
        history[steps] = validate(model, val_clip, device)
    model.eval()
    return RunResult(
        model=model,
        steps=steps,
        seconds=time.perf_counter() - started,
        losses=losses,
        validation=history,
        checkpoint=checkpoint,
        validation_clip=val_clip,
    )


def _matting_step(model, optimizer, fgr, pha, bgr, downsample_ratio: float) -> float:
    src = fgr * pha + bgr * (1 - pha)
    pred_fgr, pred_pha = model(src, downsample_ratio=downsample_ratio)[:2]
    terms = matting_loss(pred_fgr, pred_pha, fgr, pha)
    terms["total"].backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(terms["total"].detach())
