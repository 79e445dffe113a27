"""Exact scores of inverse graphics: how well a scene program recovers a target's program.

The agent's objects are matched one-to-one to the target's by an optimal assignment (minimum
total cost, Hungarian algorithm; no scipy needed), then each attribute is compared on the matched
pairs. Accuracies divide by the larger of the two object counts, so a missing or an extra object
counts as wrong for every attribute: every accuracy is 1 exactly when the two programs are the
same multiset of objects (placement order does not matter).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from spiral_envs.rewards import l2_distance
from spiral_envs.scene.program import COLOR_LEVELS, GRID, SceneObject, SceneProgram, as_objects

__all__ = [
    "SCORE_KEYS",
    "linear_assignment",
    "match_objects",
    "mean_scores",
    "pixel_l2",
    "score_scene",
]

#: Keys of :func:`score_scene`'s result, as they appear in the env's final ``info``.
SCORE_KEYS = (
    "object_accuracy",
    "type_accuracy",
    "position_accuracy",
    "size_accuracy",
    "color_accuracy",
    "position_error",
    "color_error",
    "count_error",
    "num_objects",
    "num_target_objects",
)
_MAX_CELL_DISTANCE = (GRID - 1) * math.sqrt(2.0)
_MAX_LEVEL = len(COLOR_LEVELS) - 1


def pair_cost(a: SceneObject, b: SceneObject) -> float:
    """Mismatch of two objects, in [0, 4]: type + size + colour (mean level gap) + distance."""
    color = sum(abs(x - y) for x, y in zip(a.color, b.color, strict=True)) / (3 * _MAX_LEVEL)
    dist = math.hypot(a.row - b.row, a.col - b.col) / _MAX_CELL_DISTANCE
    return float(a.type != b.type) + float(a.size != b.size) + color + dist


def linear_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost one-to-one matching of rows to columns (rectangular allowed).

    Returns ``min(n_rows, n_cols)`` pairs ``(row, col)``, sorted by row. Hungarian algorithm with
    potentials, O(n^2 m).
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.size == 0:
        return []
    transposed = cost.shape[0] > cost.shape[1]
    c = cost.T if transposed else cost
    n, m = c.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    p = np.zeros(m + 1, dtype=np.int64)  # p[j]: row (1-based) matched to column j
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            free = ~used[1:]
            cur = c[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    pairs = [(int(p[j]) - 1, j - 1) for j in range(1, m + 1) if p[j] != 0]
    if transposed:
        pairs = [(b, a) for a, b in pairs]
    return sorted(pairs)


def match_objects(
    pred: Iterable[SceneObject] | SceneProgram, target: Iterable[SceneObject] | SceneProgram
) -> list[tuple[int, int]]:
    """Optimal one-to-one matching ``(pred_index, target_index)`` under :func:`pair_cost`."""
    p, t = as_objects(pred), as_objects(target)
    cost = np.array([[pair_cost(a, b) for b in t] for a in p]).reshape(len(p), len(t))
    return linear_assignment(cost)


def score_scene(
    pred: Iterable[SceneObject] | SceneProgram, target: Iterable[SceneObject] | SceneProgram
) -> dict[str, float | int]:
    """Scores a recovered program against the target's true program.

    Returns:
        ``object_accuracy`` (matched objects right in every attribute), ``type_accuracy``,
        ``position_accuracy`` (same grid cell), ``size_accuracy``, ``color_accuracy`` (all three
        channels right): counts over the matched pairs divided by ``max(n_pred, n_target)`` (1.0
        when both are empty); ``position_error``: mean distance in grid cells over matched pairs;
        ``color_error``: mean absolute level gap per channel over matched pairs (both 0.0 when
        nothing is matched and both are empty, NaN when only one is empty); ``count_error``:
        ``|n_pred - n_target|``; ``num_objects``, ``num_target_objects`` (ints).
    """
    p, t = as_objects(pred), as_objects(target)
    pairs = match_objects(p, t)
    denom = max(len(p), len(t))
    sums = dict.fromkeys(("object", "type", "position", "size", "color"), 0.0)
    dist = color_gap = 0.0
    for i, j in pairs:
        a, b = p[i], t[j]
        same = {
            "type": a.type == b.type,
            "position": a.position == b.position,
            "size": a.size == b.size,
            "color": a.color == b.color,
        }
        same["object"] = all(same.values())
        for k, ok in same.items():
            sums[k] += float(ok)
        dist += math.hypot(a.row - b.row, a.col - b.col)
        color_gap += sum(abs(x - y) for x, y in zip(a.color, b.color, strict=True)) / 3.0
    out = {f"{k}_accuracy": (s / denom if denom else 1.0) for k, s in sums.items()}
    if pairs:
        out["position_error"] = dist / len(pairs)
        out["color_error"] = color_gap / len(pairs)
    else:
        out["position_error"] = out["color_error"] = 0.0 if denom == 0 else math.nan
    out["count_error"] = abs(len(p) - len(t))
    out["num_objects"] = len(p)
    out["num_target_objects"] = len(t)
    return {k: out[k] for k in SCORE_KEYS}


def mean_scores(rows: Iterable[dict]) -> dict[str, float | None]:
    """The mean of each key over episodes' :func:`score_scene` rows (or any rows with the same
    keys), skipping NaNs: ``position_error`` and ``color_error`` average over the episodes
    that matched some object; ``None`` where no episode has a value."""
    rows = list(rows)
    out: dict[str, float | None] = {}
    for k in rows[0] if rows else ():
        v = np.array([r[k] for r in rows], np.float64)
        out[k] = float(v[~np.isnan(v)].mean()) if (~np.isnan(v)).any() else None
    return out


def pixel_l2(canvas: np.ndarray, target: np.ndarray) -> float:
    """Mean over pixels and channels of ``((canvas - target) / 255) ** 2``, in [0, 1]."""
    a, b = np.asarray(canvas), np.asarray(target)
    if a.shape != b.shape:
        raise ValueError(f"canvas shape {a.shape} != target shape {b.shape}")
    return float(l2_distance(a, b))
