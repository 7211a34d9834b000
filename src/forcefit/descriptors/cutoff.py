"""Cutoff functions f_c(r), with n2p2's definitions and type numbers.

With the inner cutoff r_ci = α r_c and x = (r − r_ci)/(r_c − r_ci), f_c = 1 for
r < r_ci and 0 for r ≥ r_c; in between (Singraber et al., JCTC 15, 1827 (2019)):

    0 hard   1
    1 cos    ½(cos πx + 1)
    2 tanhu  tanh³(1 − r/r_c)                    (no inner cutoff)
    3 tanh   tanh³(1 − r/r_c) / tanh³(1)         (no inner cutoff)
    4 exp    exp(1 − 1/(1 − x²))
    5 poly1  (2x − 3)x² + 1
    6 poly2  ((15 − 6x)x − 10)x³ + 1
    7 poly3  (x(x(20x − 70) + 84) − 35)x⁴ + 1
    8 poly4  (x(x((315 − 70x)x − 540) + 420) − 126)x⁵ + 1
"""

from __future__ import annotations

import math

import torch

CUTOFF_TYPES = {
    "hard": 0,
    "cos": 1,
    "tanhu": 2,
    "tanh": 3,
    "exp": 4,
    "poly1": 5,
    "poly2": 6,
    "poly3": 7,
    "poly4": 8,
}
CUTOFF_NAMES = {number: name for name, number in CUTOFF_TYPES.items()}


def cutoff_function(r: torch.Tensor, rc: torch.Tensor | float, kind: str, alpha: float = 0.0) -> torch.Tensor:
    """f_c(r) for distances r (any shape, Å) and cutoff(s) rc broadcastable to r."""
    if kind not in CUTOFF_TYPES:
        raise ValueError(f"unknown cutoff function {kind!r}; choose one of {sorted(CUTOFF_TYPES)}")
    inside = r < rc
    if kind in ("tanhu", "tanh"):
        t = torch.tanh(1.0 - r / rc)
        f = t * t * t
        if kind == "tanh":
            f = f / math.tanh(1.0) ** 3
        return torch.where(inside, f, torch.zeros_like(f))
    if kind == "hard":
        return inside.to(r.dtype)
    rci = alpha * rc
    # clamp keeps x in [0, 1) in the working precision (1 − 1e-12 is 1.0 in float32), so that
    # no branch produces inf/NaN gradients (exp: 1/(1 − x²) stays finite)
    x = ((r - rci) / (rc - rci)).clamp(0.0, 1.0 - torch.finfo(r.dtype).eps)
    if kind == "cos":
        f = 0.5 * (torch.cos(math.pi * x) + 1.0)
    elif kind == "exp":
        f = torch.exp(1.0 - 1.0 / (1.0 - x * x))
    elif kind == "poly1":
        f = (2.0 * x - 3.0) * x * x + 1.0
    elif kind == "poly2":
        f = ((15.0 - 6.0 * x) * x - 10.0) * x**3 + 1.0
    elif kind == "poly3":
        f = (x * (x * (20.0 * x - 70.0) + 84.0) - 35.0) * x**4 + 1.0
    else:  # poly4
        f = (x * (x * ((315.0 - 70.0 * x) * x - 540.0) + 420.0) - 126.0) * x**5 + 1.0
    return torch.where(inside, f, torch.zeros_like(f))
