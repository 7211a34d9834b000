"""Atom-centred symmetry functions (Behler, JCP 134, 074106 (2011)) with n2p2's
definitions, so that a parameter means the same thing here as in an input.nn.

For centre i, neighbours j, k, distances r_ij and angle θ_ijk (between r_ij and r_ik):

    radial (n2p2 type 2):  G = Σ_j exp(−η (r_ij − r_s)²) f_c(r_ij)
    narrow (type 3, G4):   G = 2^(1−ζ) Σ_{j<k} (1 + λ cos θ_ijk)^ζ
                               exp(−η [(r_ij−r_s)² + (r_ik−r_s)² + (r_jk−r_s)²])
                               f_c(r_ij) f_c(r_ik) f_c(r_jk)
    wide (type 9, G5):     as narrow without the r_jk terms

Sums run over neighbours of the stated element(s); for an angular function with
elements {e1, e2} each unordered pair {j, k} with those elements counts once.
Following n2p2, (1 + λ cos θ) is floored at 0. Units: η in Å⁻², r_s and r_c in Å.

The module maps pair displacement vectors to an (n_atoms, n_features) matrix; atoms
of element e use the first n_features(e) columns, the rest stay zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from forcefit.descriptors.cutoff import CUTOFF_TYPES, InnerCutoff, cutoff_function, inner_switch
from forcefit.descriptors.engine import ENERGY, FEATURES, GRADIENT, JACOBIAN, Engine
from forcefit.descriptors.registry import register

KINDS = ("radial", "narrow", "wide")


@dataclass(frozen=True)
class SymmetryFunction:
    """One function: kind, centre element, neighbour element(s) and parameters."""

    kind: str
    center: str
    neighbors: tuple[str, ...]
    eta: float
    rc: float
    rs: float = 0.0
    lam: float = 1.0
    zeta: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "neighbors", tuple(self.neighbors))
        if self.kind not in KINDS:
            raise ValueError(f"symmetry function kind {self.kind!r}: expected one of {KINDS}")
        expected = 1 if self.kind == "radial" else 2
        if len(self.neighbors) != expected:
            raise ValueError(f"{self.kind} symmetry function needs {expected} neighbour element(s), got {self.neighbors}")
        if self.rc <= 0 or self.eta < 0:
            raise ValueError(f"symmetry function {self}: need rc > 0 and eta >= 0")
        if self.kind != "radial" and (abs(self.lam) != 1.0 or self.zeta < 1.0):
            raise ValueError(f"angular symmetry function {self}: need lambda = ±1 and zeta >= 1")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["neighbors"] = list(self.neighbors)
        return out


@register
class SymmetryFunctions(InnerCutoff, torch.nn.Module):
    """Evaluates a set of symmetry functions for all atoms of a (batched) system."""

    kind = "symmetry_functions"  # model.descriptor
    cheap_jacobian = True  # the compiled engine's Jacobian costs about one gradient pass: worth keeping for several weights

    def __init__(self, elements: list[str], functions: list[SymmetryFunction], cutoff_type: str = "tanh", cutoff_alpha: float = 0.0):
        super().__init__()
        if cutoff_type not in CUTOFF_TYPES:
            raise ValueError(f"unknown cutoff_type {cutoff_type!r}; choose one of {sorted(CUTOFF_TYPES)}")
        self.elements = list(elements)
        self.functions = list(functions)
        self.cutoff_type = cutoff_type
        self.cutoff_alpha = float(cutoff_alpha)
        index = {e: n for n, e in enumerate(self.elements)}
        for f in self.functions:
            unknown = {f.center, *f.neighbors} - set(index)
            if unknown:
                raise ValueError(f"symmetry function {f} uses elements {sorted(unknown)} not in the model's elements {self.elements}")
        self.n_features_per_element = [sum(f.center == e for f in self.functions) for e in self.elements]
        missing = [e for e, n in zip(self.elements, self.n_features_per_element) if n == 0]
        if missing:
            raise ValueError(f"no symmetry functions centred on {missing}")
        self.n_features = max(self.n_features_per_element)
        self.cutoff = max(f.rc for f in self.functions)
        angular = [f.rc for f in self.functions if f.kind != "radial"]
        self.angular_cutoff = max(angular) if angular else 0.0
        self._engine = None  # built on first use of `evaluate`
        # where the data begin, per (centre, neighbour) element pair, Å (descriptors/cutoff.py's inner switch): 0, none, until set
        self.register_inner_radii(len(self.elements))

        # Group functions by (kind, centre, neighbour elements) so that each pair or
        # triplet is only evaluated for the functions that apply to it.
        column = {e: 0 for e in self.elements}
        groups: dict[tuple, list] = {}
        for f in self.functions:
            neighbors = tuple(sorted(index[e] for e in f.neighbors))
            groups.setdefault((f.kind, index[f.center], neighbors), []).append((f, column[f.center]))
            column[f.center] += 1
        self._groups = []
        self._identity = []
        for n, ((kind, center, neighbors), members) in enumerate(groups.items()):
            fs = [f for f, _ in members]
            rcs = sorted({f.rc for f in fs})
            rss = sorted({f.rs for f in fs})
            eta_rs = sorted({(f.eta, f.rs) for f in fs})
            lam_zeta = sorted({(f.lam, f.zeta) for f in fs})
            buffers = {
                "norm": [2.0 ** (1.0 - f.zeta) if kind != "radial" else 1.0 for f in fs],
                "rc_unique": rcs,
                "rs_unique": rss,
                "er_eta": [eta for eta, _ in eta_rs],
            }
            indices = {
                "column": [c for _, c in members],
                "rc_col": [rcs.index(f.rc) for f in fs],
                "er_rs": [rss.index(rs) for _, rs in eta_rs],
                "er_col": [eta_rs.index((f.eta, f.rs)) for f in fs],
                "lz_col": [lam_zeta.index((f.lam, f.zeta)) for f in fs],
            }
            for name, values in buffers.items():
                self.register_buffer(f"g{n}_{name}", torch.tensor(values, dtype=torch.float64), persistent=False)
            for name, values in indices.items():
                self.register_buffer(f"g{n}_{name}", torch.tensor(values, dtype=torch.long), persistent=False)
            self._groups.append((n, kind, center, neighbors, lam_zeta, max(rcs)))
            self._identity.append({name: None for name, values in indices.items() if values == list(range(len(values)))})

    def _p(self, n: int, name: str) -> Tensor:
        return getattr(self, f"g{n}_{name}")

    def _terms(self, n: int, kind: str, lam_zeta: list, vp: Tensor, vq: Tensor | None, inner: list[Tensor]) -> Tensor:
        """Contributions (n_sel, n_functions_in_group) of pairs vp or triplets (vp, vq):

            term = norm · A(cos θ) · Π_d exp(−η (r_d − r_s)²) f_c(r_d),

        d over r_ij (radial), r_ij and r_ik (wide), r_ij, r_ik and r_jk (narrow).
        Work per term is kept to one gather-and-multiply per function: distances,
        cosine and cutoffs once per pair or triplet, the Gaussians once per distinct
        (η, r_s), the angular factor once per distinct (λ, ζ)."""
        eta = self._p(n, "er_eta")
        rs = self._p(n, "rs_unique")
        legs = [vp] if kind == "radial" else [vp, vq] + ([vq - vp] if kind == "narrow" else [])
        distance2, cutoffs, distances = 0.0, [], []
        for d, v in enumerate(legs):
            r = torch.linalg.vector_norm(v, dim=1)
            distance2 = distance2 + (r[:, None] - rs) ** 2  # Σ_d (r_d − r_s)², (n_sel, n_distinct r_s)
            fc = self._fc_unique(r, n)
            cutoffs.append(fc * inner_switch(r, inner[d])[:, None] if d < len(inner) else fc)  # the centre's legs fade below the data
            distances.append(r)
        gaussians = self._columns(torch.exp(-eta * self._columns(distance2, n, "er_rs")), n, "er_col")
        values = gaussians * self._columns(torch.stack(cutoffs).prod(dim=0), n, "rc_col")
        if kind == "radial":
            return values
        cos = (vp * vq).sum(dim=1) / (distances[0] * distances[1])
        angular = []
        for lam, zeta in lam_zeta:
            base = (1.0 + lam * cos).clamp(min=0.0)
            angular.append(base ** (int(zeta) if float(zeta).is_integer() else zeta))
        return values * self._columns(torch.stack(angular, dim=1), n, "lz_col") * self._p(n, "norm")

    def _columns(self, x: Tensor, n: int, name: str) -> Tensor:
        """x[:, index] for a group's column index, skipping the copy when it is the identity."""
        if name in self._identity[n]:
            return x
        return x.index_select(1, self._p(n, name))

    def _fc_unique(self, r: Tensor, n: int) -> Tensor:
        """Cutoff values (n_sel, n_distinct_rc)."""
        return cutoff_function(r[:, None], self._p(n, "rc_unique")[None, :], self.cutoff_type, self.cutoff_alpha)

    def _selections(self, species: Tensor, vectors: Tensor, pair_i: Tensor, pair_j: Tensor, triplet_p: Tensor, triplet_q: Tensor):
        """Per group: (group, kind, (λ, ζ) list, centre atom of each term, first pair,
        second pair or None, and their vectors vp, vq gathered once).

        Narrow-function triplets whose j–k distance is beyond the group's largest
        cutoff contribute nothing and are dropped here (f_c(r_jk) = 0 there, with
        zero derivative)."""
        E = len(self.elements)
        species_i, species_j = species[pair_i], species[pair_j]
        pair_code = species_i * E + species_j
        if triplet_p.numel():
            sj, sk = species_j[triplet_p], species_j[triplet_q]
            # one integer per triplet: (centre, lower neighbour element, higher neighbour element)
            triplet_code = (species_i[triplet_p] * E + torch.minimum(sj, sk)) * E + torch.maximum(sj, sk)
        for n, kind, center, neighbors, lam_zeta, rc_max in self._groups:
            if kind == "radial":
                sel = torch.nonzero(pair_code == center * E + neighbors[0]).squeeze(1)
                yield n, kind, lam_zeta, pair_i[sel], sel, None, vectors[sel], None
            elif triplet_p.numel():
                sel = torch.nonzero(triplet_code == (center * E + neighbors[0]) * E + neighbors[1]).squeeze(1)
                p, q = triplet_p[sel], triplet_q[sel]
                vp, vq = vectors[p], vectors[q]
                if kind == "narrow":
                    with torch.no_grad():
                        keep = torch.nonzero(((vq - vp) ** 2).sum(dim=1) < rc_max * rc_max).squeeze(1)
                    p, q, vp, vq = p[keep], q[keep], vp[keep], vq[keep]
                yield n, kind, lam_zeta, pair_i[p], p, q, vp, vq

    def forward(
        self,
        species: Tensor,
        vectors: Tensor,
        pair_i: Tensor,
        pair_j: Tensor,
        triplet_p: Tensor,
        triplet_q: Tensor,
        centres: tuple[int, int] | None = None,
    ) -> Tensor:
        """species: (n_atoms,) element index; vectors: (n_pairs, 3) Å, r_j − r_i;
        pair_i, pair_j: (n_pairs,); triplet_p, triplet_q: (n_triplets,) pair indices.
        Returns G: (n_atoms, n_features), or with `centres` = (a, b) the rows of atoms
        a ≤ i < b only, for pairs and triplets centred on those atoms."""
        first, last = centres if centres is not None else (0, species.shape[0])
        out = vectors.new_zeros((last - first) * self.n_features)
        inner = self.pair_inner_radii(species, pair_i, pair_j).to(vectors)
        for n, kind, lam_zeta, atoms, p, q, vp, vq in self._selections(species, vectors, pair_i, pair_j, triplet_p, triplet_q):
            values = self._terms(n, kind, lam_zeta, vp, vq, [inner[p]] if q is None else [inner[p], inner[q]])
            index = ((atoms - first)[:, None] * self.n_features + self._p(n, "column")[None, :]).reshape(-1)
            out = out.index_add(0, index, values.reshape(-1))
        return out.view(last - first, self.n_features)

    @torch.no_grad()
    def evaluate(
        self, species: Tensor, vectors: Tensor, pair_i: Tensor, pair_j: Tensor, centres: tuple[int, int], jacobian: bool
    ) -> tuple[Tensor, Tensor | None]:
        """The compiled engine (`engine.py`, CPU): G (n_block, n_features) of atoms a ≤ i < b,
        `centres` = (a, b), from the pairs centred on them (sorted by centre; triplets are
        enumerated inside), and with `jacobian` J (n_pairs, n_features, 3) = ∂G_{i_p}/∂r_p.
        Same numbers as `forward` (which is the autograd reference and the path on other
        devices), in the dtype of `vectors`."""
        dtype = vectors.dtype
        if not jacobian:
            return torch.from_numpy(
                self.engine.run(FEATURES, species, vectors, pair_i, pair_j, centres, self.pair_inner_radii(species, pair_i, pair_j))
            ).to(dtype), None
        features, jac = self.engine.run(JACOBIAN, species, vectors, pair_i, pair_j, centres, self.pair_inner_radii(species, pair_i, pair_j))
        return torch.from_numpy(features).to(dtype), torch.from_numpy(jac).to(dtype)

    @torch.no_grad()
    def pair_gradients(
        self, species: Tensor, vectors: Tensor, pair_i: Tensor, pair_j: Tensor, centres: tuple[int, int], weights: Tensor
    ) -> Tensor:
        """g_p = Σ_f w_{i_p f} ∂G_{i_p f}/∂r_p (n_pairs, 3) for weights w (n_block, n_features)
        or (1, n_features) shared by the block, say ∂E/∂G: the engine's second pass, which never
        stores a derivative per function."""
        if weights.shape[0] == 1:
            weights = weights.expand(centres[1] - centres[0], -1).contiguous()
        return torch.from_numpy(
            self.engine.run(GRADIENT, species, vectors, pair_i, pair_j, centres, self.pair_inner_radii(species, pair_i, pair_j), weights)
        ).to(vectors.dtype)

    @torch.no_grad()
    def energies_and_pair_gradients(
        self, species: Tensor, vectors: Tensor, pair_i: Tensor, pair_j: Tensor, centres: tuple[int, int], network
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(G, E_i, g) of the block's atoms for a model the engine evaluates whole (a `Network`,
        `models/bpnn.py`): one pass per atom, its terms kept between its features and its
        gradient, in the dtype of `vectors`."""
        features, energies, gradients = self.engine.run(
            ENERGY, species, vectors, pair_i, pair_j, centres, self.pair_inner_radii(species, pair_i, pair_j), network=network
        )
        return tuple(torch.from_numpy(x).to(vectors.dtype) for x in (features, energies, gradients))

    def features_and_pair_gradients(
        self, species: Tensor, vectors: Tensor, pair_i: Tensor, pair_j: Tensor, centres: tuple[int, int], weigh
    ) -> tuple[Tensor, object, Tensor]:
        """(G, value, g): `evaluate`, (value, w) = weigh(G), then `pair_gradients` with w (the
        engine's two passes); for a list of weights (a committee's members), the list of their g."""
        features, _ = self.evaluate(species, vectors, pair_i, pair_j, centres, jacobian=False)
        value, weights = weigh(features)
        if isinstance(weights, list):
            return features, value, [self.pair_gradients(species, vectors, pair_i, pair_j, centres, w) for w in weights]
        return features, value, self.pair_gradients(species, vectors, pair_i, pair_j, centres, weights)

    def bytes_per_pair(self, jacobian: bool) -> float:
        """Working memory of `evaluate` per pair, to size blocks of centre atoms: an estimate (not
        measured) of the engine's per-pair outputs and tables and the tensors around them, plus
        the Jacobian's n_features × 3 doubles."""
        return 200 + (24 * self.n_features if jacobian else 0)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self)
        return self._engine

    def get_config(self) -> dict:
        return {
            "kind": self.kind,
            "elements": self.elements,
            "functions": [f.to_dict() for f in self.functions],
            "cutoff_type": self.cutoff_type,
            "cutoff_alpha": self.cutoff_alpha,
        }

    def describe(self) -> str:
        return f"{self.n_features_per_element} symmetry functions per element"

    @classmethod
    def from_config(cls, config: dict) -> SymmetryFunctions:
        functions = [SymmetryFunction(**f) for f in config["functions"]]
        return cls(config["elements"], functions, config["cutoff_type"], config["cutoff_alpha"])


def generate_symmetry_functions(
    elements: list[str],
    rc: float,
    n_radial: int = 8,
    n_angular: int = 4,
    r_min: float = 0.8,
    angular_kind: str = "wide",
    zetas: tuple[float, ...] = (1.0, 4.0),
    angular_grid: str = "centred",
) -> list[SymmetryFunction]:
    """A sensible default set: for every centre and neighbour element,

    radial: `n_radial` Gaussians with centres r_s evenly spaced on [r_min, rc) and
        width equal to the spacing, η = 1/(2 Δ²) (the "shifted" grid of
        Gastegger et al., JCP 148, 241709 (2018));
    angular: for every neighbour-element pair, `n_angular` radial windows, each
        combined with λ = ±1 and every ζ in `zetas`. The windows are
        `angular_grid: centred`: r_s = 0 and η on a geometric grid of radii r_m in
            [r_min, rc/2] (η = 1/(2 r_m²)): nested spheres, good for molecules;
        `angular_grid: shifted`: r_s evenly spaced on [r_min, rc) with width equal
            to the spacing, as the radial grid: angles resolved by neighbour shell,
            which crystals with several close shells (bcc metals) need.
    """
    if angular_grid not in ("centred", "shifted"):
        raise ValueError(f"angular_grid: {angular_grid!r}; expected 'centred' or 'shifted'")
    if n_radial < 1 or n_angular < 0:
        raise ValueError("need n_radial >= 1 and n_angular >= 0")
    if not 0 < r_min < rc:
        raise ValueError(f"need 0 < r_min ({r_min}) < rc ({rc})")
    functions = []
    spacing = (rc - r_min) / n_radial
    centres = [r_min + k * spacing for k in range(n_radial)]
    pairs = [(a, b) for n, a in enumerate(elements) for b in elements[n:]]
    if angular_grid == "centred":
        radii = [r_min * (rc / 2 / r_min) ** (m / max(n_angular - 1, 1)) for m in range(n_angular)]
        windows = [(1.0 / (2 * radius**2), 0.0) for radius in radii]
    else:
        step = (rc - r_min) / max(n_angular, 1)
        windows = [(1.0 / (2 * step**2), r_min + m * step) for m in range(n_angular)]
    for center in elements:
        for neighbor in elements:
            functions += [SymmetryFunction("radial", center, (neighbor,), eta=1.0 / (2 * spacing**2), rc=rc, rs=rs) for rs in centres]
        for pair in pairs:
            for eta, rs in windows:
                for zeta in zetas:
                    for lam in (1.0, -1.0):
                        functions.append(SymmetryFunction(angular_kind, center, pair, eta=eta, rc=rc, rs=rs, lam=lam, zeta=zeta))
    return functions
