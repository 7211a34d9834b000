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

The inner switch s(r) of a pair at short range (`inner_switch`), with r_in the training data's
shortest distance of its element pair (models/base.py), a = INNER_END and b = INNER_START:

    s = 1 for r ≥ b r_in,   0 for r ≤ a r_in,   x³(10 − 15x + 6x²), x = (r − a r_in)/((b − a) r_in), between

C² at both ends. Descriptors multiply a pair's cutoff function by it: every training pair has
s = 1 (the fit is exactly what it was); further in, the pair's share fades to nothing, so the
learnt part of the energy stays bounded (ACE's polynomials are not extrapolated) and, below
a r_in, is what it is without the pair (constant for a dimer): there the core repulsion
(models/repulsion.py) alone acts. Where the fade starts is a trade-off, chosen on validation
data and on the crystal recipe's Si model (docs: CHANGELOG, session 15): structures a little
below the data's shortest distance are predicted best by the model's own extrapolation (a
fade starting at r_in raised the ethanol linear-ACE recipe's validation force RMSE from 22.6
to 28.0 meV/Å: the fade's slope times a pair's learnt share, which holds arbitrary constants),
while ACE's polynomials dive further in (the Si recipe's dimer fell 30 eV below its value at
r_in with a = 0.65, b = 0.9, and a 0.5 Å contact relaxed into that well at 1.44 Å). With
a = 0.75, b = 0.97: validation 23.0 meV/Å, the Si dimer never below its value at r_in, the
contact relaxed apart to 2.30 Å. An element pair the data never hold within the cutoff never
contributes; r_in = 0: no switch (models not trained by forcefit's run).
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
INNER_START, INNER_END = 0.97, 0.75  # a pair fades from 0.97 × its inner radius (the data's shortest distance) to 0.75 × it


def inner_switch(r: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """s(r) of the module docstring for distances r and inner radii r_in (broadcastable, Å)."""
    x = ((r - INNER_END * inner) / ((INNER_START - INNER_END) * inner).clamp(min=1e-12)).clamp(0.0, 1.0)
    return x**3 * (10.0 - 15.0 * x + 6.0 * x * x)


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


class InnerCutoff:
    """What a descriptor (a torch Module) needs for the inner switch: its radius per (centre,
    neighbour) element pair, a buffer so that it is saved and moved with the model."""

    def register_inner_radii(self, n_elements: int) -> None:
        # 0 (no switch) until set from the data
        self.register_buffer("inner_radius", torch.zeros((n_elements, n_elements), dtype=torch.float64))

    def set_inner_radii(self, shortest: torch.Tensor) -> None:
        """The inner radius per element pair: the training data's shortest distance; a pair the
        data never hold within the cutoff (inf) is switched off entirely (the data say nothing
        about it). Every training pair then has s = 1: the descriptors of the data do not change."""
        off = torch.full_like(self.inner_radius, self.cutoff / INNER_END)
        with torch.no_grad():
            self.inner_radius.copy_(torch.where(torch.isfinite(shortest), shortest.to(self.inner_radius), off))

    def pair_inner_radii(self, species: torch.Tensor, pair_i: torch.Tensor, pair_j: torch.Tensor) -> torch.Tensor:
        """(n_pairs,) the inner radius of each pair's element pair, Å."""
        return self.inner_radius[species[pair_i], species[pair_j]]
