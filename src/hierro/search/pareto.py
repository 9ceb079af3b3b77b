"""Pareto frontiers of two objectives (O(n log n): one sort, one running maximum)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["pareto_front"]


def pareto_front(x: ArrayLike, y: ArrayLike, *, max_x: bool = True, max_y: bool = True) -> NDArray[np.int64]:
    """Indices of the points no other point beats on both axes, ordered by x (best first).

    Ties: of equal points the first index is kept. Non-finite points are never on the front.
    """
    xa = np.asarray(x, dtype=np.float64) * (1.0 if max_x else -1.0)
    ya = np.asarray(y, dtype=np.float64) * (1.0 if max_y else -1.0)
    idx = np.flatnonzero(np.isfinite(xa) & np.isfinite(ya))
    # best x first; among equal x, best y first; then index for determinism
    order = idx[np.lexsort((idx, -ya[idx], -xa[idx]))]
    # a point is on the front when its y beats every y before it (all of which have x >= its x)
    ys = ya[order]
    before = np.maximum.accumulate(np.concatenate(([-np.inf], ys[:-1])))
    return np.asarray(order[ys > before], dtype=np.int64)
