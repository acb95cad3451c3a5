"""``refine_alpha``: sharpen a network's alpha with a classical solver in a band around its edge."""

from __future__ import annotations

import cv2
import numpy as np
import pymatting

from mattekit.classical.estimate_alpha import METHODS, as_float_image, estimate_alpha

#: Unknown-band half width as a fraction of sqrt(H·W) (about 10 px at 1080p, 4 px at 800×500).
BAND_FRACTION = 0.007
#: Alpha values strictly between these count as uncertain and join the band.
SOFT_RANGE = (0.02, 0.98)
#: Pull towards the data term in the 'sm+cf' refinement.
SM_CF_WEIGHT = 0.003


def refinement_trimap(alpha: np.ndarray, band: int | None = None) -> np.ndarray:
    """Build a trimap from an alpha: unknown where the alpha is uncertain or near its 0.5 contour.

    The unknown region is the union of (a) the pixels within ``band`` pixels of the 0.5 contour
    and (b) the pixels whose alpha is soft (between 0.02 and 0.98), grown by ``band // 2`` pixels;
    the rest is foreground where alpha >= 0.5 and background elsewhere.

    Parameters
    ----------
    alpha : ndarray, H×W float in 0..1
    band : int, optional
        Half width in pixels; default ``max(2, round(0.007 · sqrt(H·W)))``.

    Returns
    -------
    ndarray, H×W uint8 in {0, 128, 255}
    """
    a = np.asarray(alpha, dtype=np.float32)
    h, w = a.shape
    if band is None:
        band = max(2, round(BAND_FRACTION * np.sqrt(h * w)))
    fg = (a >= 0.5).astype(np.uint8)
    # distance of every pixel to the other side of the 0.5 contour
    dist_in = cv2.distanceTransform(fg, cv2.DIST_L2, 3)
    dist_out = cv2.distanceTransform(1 - fg, cv2.DIST_L2, 3)
    near_edge = np.where(fg == 1, dist_in, dist_out) <= band
    soft_seed = ((a > SOFT_RANGE[0]) & (a < SOFT_RANGE[1])).astype(np.uint8)
    grow = max(1, band // 2)
    soft = cv2.dilate(soft_seed, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))) > 0
    trimap = np.where(fg == 1, 255, 0).astype(np.uint8)
    trimap[near_edge | soft] = 128
    return trimap


def solve_cf_with_prior(image: np.ndarray, trimap: np.ndarray, prior: np.ndarray, weight: float) -> np.ndarray:
    """Closed-form matting with the unknown pixels softly pulled towards a prior alpha.

    Minimises αᵀLα + weight·Σ_unknown (α - prior)² with α fixed to 0/1 in the trimap's known
    regions, where L is the matting Laplacian of Levin et al., "A Closed-Form Solution to Natural
    Image Matting", TPAMI 2008 (``pymatting.cf_laplacian``); with ``weight = 0`` this is plain
    closed-form matting. Solved with pymatting's preconditioned
    conjugate gradients.

    Parameters
    ----------
    image : ndarray, H×W×3 float64 in 0..1
    trimap : ndarray, H×W uint8 0/128/255
    prior : ndarray, H×W float in 0..1
    weight : float >= 0

    Returns
    -------
    ndarray, H×W float32 in 0..1
    """
    is_fg = (trimap == 255).ravel()
    is_known = is_fg | (trimap == 0).ravel()
    is_unknown = ~is_known
    L = pymatting.cf_laplacian(image, is_known=is_known.reshape(trimap.shape))
    L_u = L[is_unknown, :][:, is_unknown]
    R = L[is_unknown, :][:, is_known]
    b = -R.dot(is_fg[is_known].astype(np.float64))
    if weight > 0:
        import scipy.sparse as sp

        L_u = (L_u + weight * sp.identity(L_u.shape[0], format="csr")).tocsr()
        b = b + weight * np.asarray(prior, dtype=np.float64).ravel()[is_unknown]
    x = is_fg.astype(np.float64)
    x[is_unknown] = pymatting.cg(L_u, b, M=pymatting.ichol(L_u))
    return np.clip(x, 0.0, 1.0).reshape(trimap.shape).astype(np.float32)


def refine_alpha(
    image: np.ndarray,
    alpha: np.ndarray,
    method: str = "cf",
    band: int | None = None,
    tile: int = 256,
    margin: int = 32,
    trimap: np.ndarray | None = None,
    prior_weight: float = 0.001,
) -> np.ndarray:
    """Refine a coarse alpha (e.g. a network's) with a classical matting solver near its edges.

    A trimap is built from the alpha (:func:`refinement_trimap`); the solver (closed-form matting
    by default, Levin et al., via pymatting) runs only on the tiles of the image that
    contain unknown pixels, each with ``margin`` pixels of context, and the network's alpha is kept
    everywhere outside the unknown band. A tile whose context holds no foreground or no background
    pixel keeps the network's alpha. With 'cf', the band's pixels are also pulled weakly towards
    the network's alpha (``prior_weight``, see :func:`solve_cf_with_prior`): where foreground and
    background colours are alike the Laplacian alone is ambiguous, and the network's guess wins.
    The default 0.001 was chosen on the alphamatting.com images (docs/refine.md).

    Parameters
    ----------
    image : ndarray, H×W×3, uint8 0..255 or float 0..1, RGB
    alpha : ndarray, H×W float in 0..1
    method : {'cf', 'sm+cf', 'knn', 'lkm', 'rw', 'lbdm', 'sm'}
        'sm+cf': shared matting's alpha averaged with the network's is the data term of the
        closed-form solve (weight 0.003), in the spirit of sampling-plus-Laplacian methods.
    band : int, optional
        Half width of the unknown band in pixels (default follows the image size).
    tile, margin : int
        Tile core size and context margin in pixels.
    trimap : ndarray, H×W uint8, optional
        Use this trimap instead of building one.
    prior_weight : float
        Weight of the pull towards the network's alpha in the band ('cf' only; 0 = plain cf).

    Returns
    -------
    ndarray, H×W float32 in 0..1

    Raises
    ------
    ValueError
        Sizes differ or the method is unknown.
    """
    if method not in METHODS and method != "sm+cf":
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}, sm+cf")
    img = as_float_image(image)
    a = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)
    if a.shape != img.shape[:2]:
        raise ValueError(f"alpha size {a.shape} differs from image size {img.shape[:2]}")
    tri = refinement_trimap(a, band) if trimap is None else np.asarray(trimap)
    unknown = tri == 128
    out = a.copy()
    h, w = a.shape
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            core = unknown[y0 : y0 + tile, x0 : x0 + tile]
            if not core.any():
                continue
            ya, yb = max(0, y0 - margin), min(h, y0 + tile + margin)
            xa, xb = max(0, x0 - margin), min(w, x0 + tile + margin)
            sub_tri = tri[ya:yb, xa:xb]
            if not (sub_tri == 0).any() or not (sub_tri == 255).any():
                continue
            if method == "cf":
                solved = solve_cf_with_prior(img[ya:yb, xa:xb], sub_tri, a[ya:yb, xa:xb], prior_weight)
            elif method == "sm+cf":
                # shared matting's estimate, averaged with the network's, as the data term of the cf solve
                sampled = estimate_alpha(img[ya:yb, xa:xb], sub_tri, "sm")
                prior = 0.5 * (sampled + a[ya:yb, xa:xb])
                solved = solve_cf_with_prior(img[ya:yb, xa:xb], sub_tri, prior, SM_CF_WEIGHT)
            else:
                solved = estimate_alpha(img[ya:yb, xa:xb], sub_tri, method)
            cy, cx = y0 - ya, x0 - xa
            sol = solved[cy : cy + core.shape[0], cx : cx + core.shape[1]]
            region = out[y0 : y0 + core.shape[0], x0 : x0 + core.shape[1]]
            region[core] = sol[core]
    return out
