"""Metrics: hand-computed values on tiny arrays, zero for identical inputs, and growth with degradation."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from mattekit import metrics as M
from mattekit.metrics.image import connectivity_levels, gaussian_derivative_filters
from media import SHARED_DATA

SHARED = SHARED_DATA
ALPHAMATTING = SHARED / "alphamatting"


# ---------------------------------------------------------------- hand-computed values


def test_sad_mse_mad_by_hand_with_and_without_trimap():
    gt = np.array([[0.0, 1.0], [0.5, 0.2]])
    pred = np.array([[0.1, 0.7], [0.5, 0.6]])
    # |d| = .1 .3 0 .4 ; d² = .01 .09 0 .16
    assert M.sad(pred, gt) == pytest.approx(0.8)
    assert M.mad(pred, gt) == pytest.approx(0.2)
    assert M.mse(pred, gt) == pytest.approx(0.26 / 4)
    trimap = np.array([[0, 128], [255, 128]], dtype=np.uint8)  # unknown: (0,1) and (1,1)
    assert M.sad(pred, gt, trimap) == pytest.approx(0.7)
    assert M.mad(pred, gt, trimap) == pytest.approx(0.35)
    assert M.mse(pred, gt, trimap) == pytest.approx(0.25 / 2)


def test_uint8_alpha_is_divided_by_255():
    gt = np.array([[0, 255]], dtype=np.uint8)
    pred = np.array([[51, 255]], dtype=np.uint8)
    assert M.sad(pred, gt) == pytest.approx(0.2)


def test_conn_by_hand_levels_and_theta():
    gt = np.ones((3, 3))
    pred = np.ones((3, 3))
    # centre 0: it leaves the source region at t = 0.1 -> level 0; d_gt = 1 -> phi_gt = 0, phi_pred = 1.
    pred[1, 1] = 0.0
    assert connectivity_levels(pred, gt)[1, 1] == 0.0
    assert M.conn(pred, gt) == pytest.approx(1.0)
    # centre 0.55: level 0.5, d_pred = 0.05 < theta -> phi 1; d_gt = 0.5 -> phi 0.5.
    pred[1, 1] = 0.55
    assert connectivity_levels(pred, gt)[1, 1] == pytest.approx(0.5)
    assert M.conn(pred, gt) == pytest.approx(0.5)
    # centre 0.7: still in at t = 0.7 (>=), out at 0.8 -> level 0.7; error = |1 - 0.7| = 0.3.
    pred[1, 1] = 0.7
    assert connectivity_levels(pred, gt)[1, 1] == pytest.approx(0.7)
    assert M.conn(pred, gt) == pytest.approx(0.3)
    # an isolated opaque pixel cut off from the large region is disconnected at t = 0.1
    gt2 = np.zeros((1, 5))
    gt2[0, :2] = 1.0
    gt2[0, 4] = 1.0
    pred2 = gt2.copy()
    assert connectivity_levels(pred2, gt2)[0, 4] == 0.0
    assert M.conn(pred2, gt2) == 0.0  # identical, so phi equal anyway


def test_gradient_filter_shape_and_norm():
    kx, ky = gaussian_derivative_filters(1.4)
    assert kx.shape == (9, 9)  # half size ceil(1.4*sqrt(-2 ln(sqrt(2 pi)*1.4*0.01))) = 4
    assert (kx**2).sum() == pytest.approx(1.0)
    assert kx.sum() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(ky, kx.T)


def test_grad_on_a_ramp_by_hand():
    # pred is a horizontal ramp a*x, gt is flat: away from the borders |grad pred| = a * S with
    # S = sum_ij k(i, j) * j for the unit-norm kernel k(i, j) ∝ g(i) * g'(j) (g' = -j g / s²).
    s, a = 1.4, 0.01
    r = np.arange(-4, 5, dtype=float)
    g = np.exp(-(r**2) / (2 * s * s))
    k = np.outer(g, -r * g)
    k /= np.sqrt((k**2).sum())
    S = abs((k * r[None, :]).sum())
    pred = np.tile(a * np.arange(40, dtype=float), (20, 1))
    gt = np.zeros_like(pred)
    trimap = np.zeros(pred.shape, np.uint8)
    trimap[8:12, 10:30] = 128  # 80 interior pixels
    assert M.grad(pred, gt, trimap) == pytest.approx(80 * (a * S) ** 2, rel=1e-9)
    # a constant offset changes SAD but not the gradients
    assert M.grad(pred + 0.2, pred, trimap) == pytest.approx(0.0, abs=1e-20)


def test_dtssd_and_messddt_by_hand():
    gt = np.zeros((2, 1, 2))
    pred = np.zeros((2, 1, 2))
    pred[1] = [0.1, 0.3]
    assert M.dtssd(pred, gt) == pytest.approx(math.sqrt((0.01 + 0.09) / 2))
    # still flow: E0 = [0, 0], E1 = [0.01, 0.09] -> mean |E0 - E1| = 0.05
    zero_flow = np.zeros((1, 1, 2, 2), np.float32)
    assert M.messddt(pred, gt, flow=zero_flow) == pytest.approx(0.05)


def test_conventions_scale_and_name_the_columns():
    gt = np.zeros((2, 1, 2))
    pred = np.zeros((2, 1, 2))
    pred[1] = [0.1, 0.3]
    raw = M.video_metrics(pred, gt, convention="raw")
    rvm = M.video_metrics(pred, gt, convention="rvm")
    pdl = M.video_metrics(pred, gt, convention="paddleseg")
    assert rvm["MAD"] == pytest.approx(raw["MAD"] * 1e3)
    assert rvm["MSE"] == pytest.approx(raw["MSE"] * 1e3)
    # RVM's evaluator gives frame 0 a dtSSD of 0 and averages over all T frames
    assert rvm["dtSSD"] == pytest.approx(raw["dtSSD"] * 1e2 / 2)
    assert pdl["SAD"] == pytest.approx(raw["SAD"] / 1e3)
    assert pdl["MSE"] == pytest.approx(raw["MSE"])
    assert M.CONVENTIONS["rvm"].label("MSE") == "MSE ×1e3"
    assert M.CONVENTIONS["rvm"].label("Grad") == "Grad ÷1000"
    assert M.CONVENTIONS["rvm"].label("dtSSD") == "dtSSD ×1e2"
    assert M.CONVENTIONS["paddleseg"].label("MSE") == "MSE"
    with pytest.raises(ValueError, match="unknown convention 'nope'"):
        M.get_convention("nope")


def test_paddleseg_convention_clamps_known_regions():
    gt = np.array([[0.0, 0.5, 1.0]])
    pred = np.array([[0.3, 0.5, 0.4]])
    trimap = np.array([[0, 128, 255]], np.uint8)
    assert M.image_metrics(pred, gt, trimap, "paddleseg")["SAD"] == 0.0
    # without a trimap PaddleSeg counts every pixel
    assert M.image_metrics(pred, gt, None, "paddleseg")["SAD"] == pytest.approx(0.9e-3)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"pred shape \(2, 2\) differs from gt shape \(2, 3\)"):
        M.sad(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="needs at least 2 frames, got 1"):
        M.dtssd(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))


# ---------------------------------------------------------------- real ground truth


def _gt(name="GT04", scale=0.5):
    path = ALPHAMATTING / "gt" / f"{name}.png"
    if not path.exists():
        pytest.skip(f"test data missing: {path} (../shared/data beside the checkout)")
    a = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float64) / 255.0
    tri = cv2.imread(str(ALPHAMATTING / "trimap1" / f"{name}.png"), cv2.IMREAD_GRAYSCALE)
    size = (int(a.shape[1] * scale), int(a.shape[0] * scale))
    a = cv2.resize(a, size, interpolation=cv2.INTER_AREA)
    tri = cv2.resize(tri, size, interpolation=cv2.INTER_NEAREST)
    return a, tri


def _blur(a, k):
    return cv2.GaussianBlur(a, (0, 0), k)


def _shift(a, k):
    return np.roll(a, k, axis=1)


def _noise(a, k):
    rng = np.random.default_rng(0)
    return np.clip(a + rng.normal(0, k, a.shape), 0, 1)


@pytest.mark.parametrize(("degrade", "mild", "strong"), [(_blur, 1.0, 4.0), (_shift, 1, 4), (_noise, 0.03, 0.15)])
@pytest.mark.parametrize("metric", ["SAD", "MSE", "MAD", "Grad", "Conn"])
def test_image_metrics_zero_on_identity_and_grow_with_degradation(degrade, mild, strong, metric):
    gt, tri = _gt()
    for trimap in (None, tri):
        same = M.image_metrics(gt, gt, trimap, "raw", (metric,))[metric]
        weak = M.image_metrics(degrade(gt, mild), gt, trimap, "raw", (metric,))[metric]
        bad = M.image_metrics(degrade(gt, strong), gt, trimap, "raw", (metric,))[metric]
        assert same == 0.0
        assert 0.0 < weak < bad, (metric, degrade.__name__, weak, bad)


def _moving_clip(frames=6, step=3):
    gt, _ = _gt("GT04", 0.25)
    return np.stack([np.roll(gt, step * t, axis=1) for t in range(frames)])


def test_video_metrics_zero_on_identity_and_grow_with_flicker():
    clip = _moving_clip()
    rng = np.random.default_rng(1)
    zero = M.video_metrics(clip, clip, convention="raw")
    assert all(v == 0.0 for v in zero.values()), zero
    values = []
    for amount in (0.02, 0.1):
        # flicker: every frame gets its own brightness change in the soft region
        gain = 1 + amount * rng.standard_normal(len(clip))
        flick = np.clip(clip * gain[:, None, None], 0, 1)
        values.append(M.video_metrics(flick, clip, convention="raw", metrics=("dtSSD", "MESSDdt")))
    assert 0 < values[0]["dtSSD"] < values[1]["dtSSD"]
    assert 0 < values[0]["MESSDdt"] < values[1]["MESSDdt"]


def test_messddt_forgives_an_error_that_moves_with_the_object():
    # The same 1-pixel lag in every frame moves with the object: the motion-compensated change of the
    # error is much smaller than that of an error of the same size that jumps around (flicker).
    clip = _moving_clip(frames=6, step=2)
    lagging = np.roll(clip, 1, axis=2)
    jumping = np.stack([np.roll(f, 1 if t % 2 else -1, axis=1) for t, f in enumerate(clip)])
    m_lag = M.messddt(lagging, clip)
    m_jump = M.messddt(jumping, clip)
    assert M.mse(lagging[2], clip[2]) == pytest.approx(M.mse(jumping[2], clip[2]), rel=0.5)
    assert m_lag < 0.5 * m_jump, (m_lag, m_jump)
