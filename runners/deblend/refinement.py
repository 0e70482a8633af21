"""Refining a first α and W so that the photos recovered under the mark look like photos.

The first fit (`views.fit_layers`) compares each view with a smooth guess of the photo under
the mark, and inherits that guess's error. Here the guess is dropped: with β = 1 / (1 − α),
the photo recovered from view k is ``J_k = β·(I_k − W) + W``, linear in β for a given W. A
right β and W leave only the photos' own gradients, which are sparse and differ from view to
view; a wrong β leaves the mark's outline, the same in every view, so the sum over views of
|∇J_k| (an L1 norm, as in Dekel et al., CVPR 2017) is least at the mark. It is minimised by
iteratively reweighted least squares: each round is one sparse linear system in β over the
pixel grid (solved by preconditioned conjugate gradients), then a closed-form update of the
single colour W, which enters as ``∇J_k = ∇(β·I_k) − W·∇β``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Refined", "refine_around", "refine_layers"]

ROUNDS = 8
"""Reweighting rounds: the weights settle after a few."""
CG_STEPS = 150
"""Conjugate-gradient steps per round, at most."""
GRADIENT_FLOOR = 1.0
"""Levels below which a recovered gradient counts as flat (keeps the L1 weights finite; about
the rounding error of an 8-bit image)."""
MAX_ALPHA = 0.95
"""Largest opacity the refinement may reach: above it 1/(1 − α) magnifies noise past use."""
ANCHOR = 0.02
"""Weight, relative to the gradient terms, that holds β near the first fit where the views
say little (flat photos): it only breaks ties."""


@dataclass(frozen=True)
class Refined:
    alpha: np.ndarray
    """(h, w) float32."""
    colour: np.ndarray
    """(3,) float32: the mark's single colour."""


def _edge_terms(
    pixels: np.ndarray, beta: np.ndarray, colour: np.ndarray, valid: np.ndarray, axis: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per edge along `axis` (1: columns, 2: rows of the (K, h, w, 3) stack): the L1 weights
    (K, e) summed over channels, and the pixel pairs' D = I − W on either side."""
    first = [slice(None)] * 4
    second = [slice(None)] * 4
    first[axis], second[axis] = slice(None, -1), slice(1, None)
    d = pixels - colour
    d_p, d_q = d[tuple(first)], d[tuple(second)]
    b_p, b_q = beta[tuple(first[1:3])], beta[tuple(second[1:3])]
    both = valid[tuple(first[:3])] & valid[tuple(second[:3])]
    residual = b_q[None, ..., None] * d_q - b_p[None, ..., None] * d_p
    # Colour channels share one weight: an edge of the photo is an edge in all of them.
    length = np.sqrt((residual * residual).sum(axis=3) + GRADIENT_FLOOR**2)
    weight = np.where(both, 1.0 / length, 0.0).astype(np.float32)
    return weight, d_p, d_q, residual, both


def _system(
    pixels: np.ndarray, beta: np.ndarray, colour: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The reweighted normal equations A·β = b for the current weights, as the 5-point
    stencil's diagonal (h, w), its column and row couplings, and b."""
    height, width = beta.shape
    diagonal = np.zeros((height, width), np.float64)
    rhs = np.zeros((height, width), np.float64)
    couplings = []
    views = max(1, pixels.shape[0])
    for axis in (2, 1):
        weight, d_p, d_q, _, _ = _edge_terms(pixels, beta, colour, valid, axis)
        w = weight[..., None]
        pp = (w * d_p * d_p).sum(axis=(0, 3)) / views
        qq = (w * d_q * d_q).sum(axis=(0, 3)) / views
        pq = -(w * d_p * d_q).sum(axis=(0, 3)) / views
        if axis == 2:
            diagonal[:, :-1] += pp
            diagonal[:, 1:] += qq
        else:
            diagonal[:-1, :] += pp
            diagonal[1:, :] += qq
        couplings.append(pq)
    return diagonal, couplings[0], couplings[1], rhs


def _apply(x: np.ndarray, diagonal: np.ndarray, across: np.ndarray, down: np.ndarray) -> np.ndarray:
    out = diagonal * x
    out[:, :-1] += across * x[:, 1:]
    out[:, 1:] += across * x[:, :-1]
    out[:-1, :] += down * x[1:, :]
    out[1:, :] += down * x[:-1, :]
    return out


def _solve(
    diagonal: np.ndarray,
    across: np.ndarray,
    down: np.ndarray,
    rhs: np.ndarray,
    start: np.ndarray,
) -> np.ndarray:
    """Jacobi-preconditioned conjugate gradients from `start`."""
    inverse = 1.0 / np.maximum(diagonal, 1e-12)
    x = start.astype(np.float64).copy()
    r = rhs - _apply(x, diagonal, across, down)
    z = inverse * r
    p = z.copy()
    rz = float((r * z).sum())
    # Relative to the start's residual: the fixed pixels' huge anchors make |b| meaningless.
    target = 1e-8 * rz
    for _ in range(CG_STEPS):
        if rz <= target:
            break
        ap = _apply(p, diagonal, across, down)
        step = rz / max(float((p * ap).sum()), 1e-300)
        x += step * p
        r -= step * ap
        z = inverse * r
        rz_next = float((r * z).sum())
        p = z + (rz_next / max(rz, 1e-300)) * p
        rz = rz_next
    return x


def _colour_update(
    pixels: np.ndarray, beta: np.ndarray, colour: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """W minimising the reweighted Σ |∇(β·I_k) − W·∇β|², per channel, weights from the
    current β and W."""
    numerator = np.zeros(3, np.float64)
    denominator = 0.0
    for axis in (2, 1):
        weight, _, _, _, _ = _edge_terms(pixels, beta, colour, valid, axis)
        first = [slice(None)] * 4
        second = [slice(None)] * 4
        first[axis], second[axis] = slice(None, -1), slice(1, None)
        b_p, b_q = beta[tuple(first[1:3])], beta[tuple(second[1:3])]
        scaled = (
            b_q[None, ..., None] * pixels[tuple(second)]
            - b_p[None, ..., None] * pixels[tuple(first)]
        )
        step = (b_q - b_p)[None]
        numerator += (weight[..., None] * scaled * step[..., None]).sum(axis=(0, 1, 2))
        denominator += float((weight * step * step).sum())
    if denominator <= 1e-9:
        return colour
    return np.clip(numerator / denominator, 0.0, 255.0).astype(np.float32)


def refine_layers(
    views: np.ndarray,
    valid: np.ndarray,
    alpha: np.ndarray,
    colour: np.ndarray,
    region: np.ndarray,
) -> Refined:
    """α and the single colour W refined over `region` ((h, w) bool; α stays 0 outside it).

    `views` (K, h, w, 3) float32 and `valid` (K, h, w) bool as for `views.fit_layers`;
    `alpha` (h, w) the first fit, `colour` (3,) its colour."""
    pixels = views.astype(np.float32) * valid[..., None]
    colour = np.asarray(colour, np.float32).reshape(3)
    first = np.clip(alpha.astype(np.float64), 0.0, MAX_ALPHA)
    start = 1.0 / (1.0 - first)
    start[~region] = 1.0
    beta = start.copy()
    most = 1.0 / (1.0 - MAX_ALPHA)
    for _ in range(ROUNDS):
        diagonal, across, down, rhs = _system(pixels, beta.astype(np.float32), colour, valid)
        scale = float(np.median(diagonal[region])) if region.any() else 1.0
        anchor = np.where(region, ANCHOR * max(scale, 1e-6), 1e6 * max(scale, 1.0))
        beta = _solve(diagonal + anchor, across, down, rhs + anchor * start, beta)
        beta = np.clip(beta, 1.0, most)
        beta[~region] = 1.0
        colour = _colour_update(pixels, beta.astype(np.float32), colour, valid)
    refined = (1.0 - 1.0 / beta).astype(np.float32)
    return Refined(alpha=refined, colour=colour)


REACH = 10
"""Pixels beyond the outline's support the refinement may still give opacity: the fringe,
and letters whose outline was too faint to be found."""


def refine_around(
    views: np.ndarray, valid: np.ndarray, alpha: np.ndarray, colour: np.ndarray, support: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`refine_layers` over `support` and `REACH` pixels around it, worked on the smallest
    window that holds them; (α (h, w) float32, W (h, w, 3) float32) at the views' size."""
    side = 2 * REACH + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    region = cv2.dilate(support.astype(np.uint8), kernel) > 0
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if rows.size == 0:
        return alpha, colour
    height, width = region.shape
    window = np.s_[
        max(0, rows[0] - 1) : min(height, rows[-1] + 2),
        max(0, cols[0] - 1) : min(width, cols[-1] + 2),
    ]
    colour_value = colour[support].mean(axis=0) if support.any() else colour.reshape(-1, 3)[0]
    refined = refine_layers(
        views[:, window[0], window[1]],
        valid[:, window[0], window[1]],
        alpha[window],
        colour_value,
        region[window],
    )
    out = np.zeros_like(alpha, dtype=np.float32)
    out[window] = refined.alpha
    return out, np.broadcast_to(refined.colour, colour.shape).astype(np.float32)
