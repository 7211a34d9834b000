"""Linear model on symmetry functions: E = Σ_i [c_{Z_i} · G̃_i + e_{Z_i}].

G̃ are the symmetry functions scaled with training-set statistics (as for the
network, `scalecenter` by default): the same model as on raw G up to the
constants, but a far better conditioned problem for any solver.

Energies, forces and stresses are linear in θ = (c, e, b): a structure's energy is
Σ_Z (Σ_{i∈Z} G_i) · c_Z + Σ_Z N_Z e_Z − b (b's column is zero unless the global offset is
opted in, models/base.py: the minimum-norm solve then keeps b = 0), and its forces are
F_k = −Σ_p (δ_{k i_p} − δ_{k j_p}) Σ_f c_{Z_{i_p} f} ∂G_{i_p f}/∂r_p, i.e. the force
rows of the design matrix come from the cached descriptor Jacobian. The loss
(`forcefit.training.loss`) plus a ridge term Σ_f λ_f c_f² is then a quadratic form

    L(θ) = (1/S) |W^{1/2} (X θ − y)|² + Σ_f λ_f c_f²,    λ_f = λ (1 + d_f)^p,

solved in closed form (`fit_ridge`), and its gradient is analytic:
∂L/∂θ = (2/S) Xᵀ W (X θ − y) + 2 λ_f c_f (`loss_gradient`). With p = 0 (the default) it is
plain ridge; p > 0 is a smoothness prior that penalises invariants of high degree d_f more.
"""

from __future__ import annotations

import torch
from torch import Tensor

from forcefit.data import collate
from forcefit.descriptors.scaling import element_rows
from forcefit.descriptors.symmetry_functions import SymmetryFunctions
from forcefit.models.base import DescriptorPotential, DescriptorSettings
from forcefit.models.forces import assemble, core_repulsion
from forcefit.models.registry import register

DESIGN_CHUNK = 16  # structures per block of design-matrix rows (their Jacobians are in memory at once)
TERMS = ("energy", "forces", "stress")  # the loss terms, in the order of the design's rows


def weighted_gram(X: Tensor, y: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """(XᵀWX, XᵀWy) of rows X with targets y and weights w."""
    weighted = w[:, None] * X
    return X.T @ weighted, weighted.T @ y


@register
class LinearModel(DescriptorPotential):
    kind = "linear"
    closed_form = True

    @classmethod
    def from_settings(cls, m: DescriptorSettings, elements: list[str]) -> LinearModel:
        return cls(cls.descriptor_from_settings(m, elements), scaling={"mode": m.scaling}, core_repulsion=cls.core_repulsion_from_config(m))

    def __init__(self, descriptor: dict | SymmetryFunctions, scaling: dict | None = None, core_repulsion: bool = False):
        super().__init__(descriptor, scaling, core_repulsion)
        descriptor = self.descriptor
        n_elements, n_features = len(self.elements), descriptor.n_features
        self.coefficients = torch.nn.Parameter(torch.zeros((n_elements, n_features), dtype=torch.float64))
        self.element_energies = torch.nn.Parameter(torch.zeros(n_elements, dtype=torch.float64))
        mask = torch.zeros((n_elements, n_features), dtype=torch.bool)
        for e, n in enumerate(descriptor.n_features_per_element):
            mask[e, :n] = True
        self.register_buffer("feature_mask", mask, persistent=False)

    def atom_energies_from_features(self, features: Tensor, species: Tensor) -> Tensor:
        c = self.coefficients * self.feature_mask
        return (self.scaling(features, species) * c[species]).sum(dim=1) + self.element_energies[species]

    def input_map(self) -> tuple[Tensor, Tensor]:
        """The scaled features the coefficients multiply; masked ones are not read."""
        slope, intercept = super().input_map()
        mask = self.feature_mask.to(slope)
        return slope * mask, intercept * mask

    def energies_and_weights(self, features: Tensor, species: Tensor) -> tuple[Tensor, Tensor]:
        """E_i = G_i · a_Z + b_Z, the scaling folded into the coefficients (a = factor · c,
        b = e + Σ_f (offset − factor · reference) c): the weights ∂E_i/∂G_i are a_Z, one row
        (1, F) for a block of one element, and no autograd graph is built."""
        with torch.no_grad():  # (a view of a tensor that requires grad would still require it)
            c = self.coefficients * self.feature_mask
            s = self.scaling
            slope = (s.factor * c).to(features)
            intercept = (self.element_energies + ((s.offset - s.factor * s.reference) * c).sum(1)).to(features)
            weights = element_rows(slope, species)
            return (features * weights).sum(1) + element_rows(intercept, species), weights

    def initialise(self, graphs: list) -> None:
        """Fit the feature scaling on training graphs; coefficients start at zero, the energies
        per element (and b with a global offset) by least squares on composition."""
        counts, energies, _ = self.fit_scaling(graphs)
        self.start_energy_zero(self.element_energies, counts, energies)

    # ----------------------------------------------------------- quadratic form

    def _theta(self) -> Tensor:
        return torch.cat([self.coefficients[self.feature_mask], self.element_energies, self.energy_offset[None]])

    def _set_theta(self, theta: Tensor) -> None:
        n_c = int(self.feature_mask.sum())
        with torch.no_grad():
            coefficients = torch.zeros_like(self.coefficients)
            coefficients[self.feature_mask] = theta[:n_c]
            self.coefficients.copy_(coefficients)
            self.element_energies.copy_(theta[n_c : n_c + len(self.elements)])
            self.energy_offset.fill_(float(theta[-1]))

    def design(self, graphs: list, weights, n_structures: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Rows X, targets y and row weights w such that the loss over `graphs` is Σ w (Xθ − y)²,
        the weights divided by `n_structures` (default: those in `graphs`)."""
        from dataclasses import replace

        graphs = list(graphs)
        batch = collate([replace(g, jacobian=None) for g in graphs])  # the Jacobians are read per structure, never concatenated
        if batch.features is None or any(g.jacobian is None for g in graphs):
            raise ValueError("the linear model's design matrix needs cached descriptors (cache_descriptors)")
        if batch.n_structures != len(graphs):
            raise ValueError(f"the linear model's design takes one structure per graph, got {batch.n_structures} in {len(graphs)}")
        species = self.species(batch.numbers)
        S, N = batch.n_structures, batch.numbers.shape[0]
        n_columns = int(self.feature_mask.sum())
        n_theta = n_columns + len(self.elements) + 1
        scale = (1.0 / batch.n_atoms.double()) if weights.energy_per_atom else torch.ones(S, dtype=torch.float64)
        energy_rows = torch.zeros((S, n_theta), dtype=torch.float64)
        force_rows = torch.zeros((N * 3, n_theta), dtype=torch.float64)
        stress_rows = torch.zeros((S * 9, n_theta), dtype=torch.float64)
        periodic = batch.pbc.all(dim=1)
        centre = species[batch.pair_i]
        scaled = self.scaling(batch.features, species)
        vectors = batch.vectors().double()
        volume = torch.linalg.det(batch.cell.double()).abs()
        bounds = torch.searchsorted(batch.pair_structure, torch.arange(S + 1)).tolist()  # pairs come sorted by structure (collate)
        start = 0
        for e in range(len(self.elements)):  # the columns of element e's features, all at once
            features = torch.nonzero(self.feature_mask[e]).squeeze(1)
            columns = slice(start, start + len(features))
            start += len(features)
            own = species == e
            energy_rows[:, columns] = scaled.new_zeros((S, len(features))).index_add(
                0, batch.structure_index[own], scaled[own][:, features]
            )
            # g_p = c_f ∂G_f/∂r_p per column: F_i = −∂E/∂r_i gathers +g_p at i_p and −g_p at j_p (models/forces.py);
            # σ = sym(Σ_p r_p ⊗ g_p) / V (free clusters: 0, no label). The scaling factor of each column is
            # applied to the sums, and a structure's Jacobian is copied only where this element's pairs
            # or features are a part of it
            factor = self.scaling.factor[e, features]
            forces = scaled.new_zeros((N, len(features), 3))
            for structure, graph in enumerate(graphs):
                p0, p1 = bounds[structure], bounds[structure + 1]
                jacobian = graph.jacobian.to(forces) if len(features) == graph.jacobian.shape[1] else graph.jacobian[:, features].to(forces)
                pair_i, pair_j, pair_vectors = batch.pair_i[p0:p1], batch.pair_j[p0:p1], vectors[p0:p1]
                own = centre[p0:p1] == e
                if not bool(own.all()):
                    jacobian, pair_i, pair_j, pair_vectors = jacobian[own], pair_i[own], pair_j[own], pair_vectors[own]
                forces.index_add_(0, pair_i, jacobian).index_add_(0, pair_j, jacobian, alpha=-1.0)
                if periodic[structure]:
                    virial = torch.einsum("pa,pfb->fab", pair_vectors, jacobian) * factor[:, None, None]
                    sigma = 0.5 * (virial + virial.transpose(1, 2)) / volume[structure]
                    stress_rows[structure * 9 : (structure + 1) * 9, columns] = sigma.reshape(len(features), 9).T
            force_rows[:, columns] = (forces * factor[None, :, None]).transpose(1, 2).reshape(N * 3, len(features))
        for e in range(len(self.elements)):
            energy_rows[:, n_columns + e] = torch.zeros(S, dtype=torch.float64).index_add(0, batch.structure_index, (species == e).double())
        energy_rows[:, -1] = -1.0 if self.global_offset else 0.0  # b = 0 unless opted in (models/base.py)
        energy_rows *= scale[:, None]
        y_energy, y_forces, y_stress = batch.ref_energy, batch.ref_forces, batch.ref_stress
        if self.core_repulsion is not None:  # the fit is made on top of the prior: targets minus its share
            repulsion, gradients = core_repulsion(self, batch, vectors)
            prior_forces, prior_stress = assemble(batch, vectors, gradients, stress=True)
            y_energy = y_energy - repulsion.new_zeros(S).index_add(0, batch.structure_index, repulsion)
            y_forces, y_stress = y_forces - prior_forces, y_stress - prior_stress
        y_energy = y_energy * scale
        y_forces = y_forces.reshape(-1)
        w_energy = weights.energy * batch.weight * torch.isfinite(y_energy)
        w_forces = weights.forces * batch.weight[batch.structure_index].repeat_interleave(3) * torch.isfinite(y_forces)
        y_stress = y_stress.reshape(-1)
        w_stress = weights.stress * batch.weight.repeat_interleave(9) * torch.isfinite(y_stress)
        X = torch.cat([energy_rows, force_rows, stress_rows])
        y = torch.nan_to_num(torch.cat([y_energy, y_forces, y_stress]))
        w = torch.cat([w_energy, w_forces, w_stress]) / (n_structures or S)
        return X, y, w

    def _chunks(self, graphs, weights):
        """(X, y, w, ends, atoms) of DESIGN_CHUNK structures at a time, weighted for the whole set
        (the normal equations are sums over structures, so they never need all rows at once);
        ends: where the energy, force and stress rows of X end; atoms: each structure's atom count."""
        for start in range(0, len(graphs), DESIGN_CHUNK):
            chunk = list(graphs[start : start + DESIGN_CHUNK])
            X, y, w = self.design(chunk, weights, len(graphs))
            atoms = torch.tensor([g.numbers.shape[0] for g in chunk])
            yield X, y, w, (len(chunk), len(chunk) + 3 * int(atoms.sum()), X.shape[0]), atoms

    def ridge_penalty(self, ridge: float, smoothness: float = 0.0) -> Tensor:
        """The diagonal of the penalty over θ: λ (1 + d_f)^p for the coefficient of feature f,
        d_f its polynomial degree (`descriptor.feature_degrees`: Σ (n + l) over its factors) and
        p = `smoothness` (0: plain ridge, every coefficient alike), so that rougher invariants
        pay more (a smoothness prior, as in linear ACE fits); 0 for the energies per element and b."""
        n_c = int(self.feature_mask.sum())
        penalty = torch.zeros(n_c + len(self.elements) + 1, dtype=torch.float64)
        if smoothness == 0.0:
            penalty[:n_c] = ridge
            return penalty
        degrees = getattr(self.descriptor, "feature_degrees", None)
        if degrees is None:
            raise ValueError(f"training.ridge_smoothness needs a descriptor with polynomial degrees (ace), not {self.descriptor.kind}")
        per_feature = (1.0 + degrees().double()) ** smoothness
        penalty[:n_c] = ridge * per_feature.expand(len(self.elements), -1)[self.feature_mask]
        return penalty

    def normal_equation_terms(self, graphs, weights) -> dict[str, tuple[Tensor, Tensor]]:
        """(XᵀWX, XᵀWy) of each loss term (energy, forces, stress) over `graphs`, in one pass of
        DESIGN_CHUNK structures at a time. The terms add up to the loss's normal equations,
        so other weights of a term need no second pass: scale its pair."""
        n_theta = int(self.feature_mask.sum()) + len(self.elements) + 1
        terms = {t: (torch.zeros((n_theta, n_theta), dtype=torch.float64), torch.zeros(n_theta, dtype=torch.float64)) for t in TERMS}
        for X, y, w, ends, _ in self._chunks(graphs, weights):
            for term, begin, end in zip(TERMS, (0, *ends[:2]), ends):
                A, rhs = weighted_gram(X[begin:end], y[begin:end], w[begin:end])
                terms[term][0].add_(A)
                terms[term][1].add_(rhs)
        return terms

    def normal_equations(self, graphs, weights) -> tuple[Tensor, Tensor]:
        """(XᵀWX, XᵀWy) of the loss over `graphs`: the sum of its terms."""
        terms = list(self.normal_equation_terms(graphs, weights).values())
        return sum(A for A, _ in terms), sum(rhs for _, rhs in terms)

    def solve_ridge(self, normal_equations: tuple[Tensor, Tensor], ridge: float, smoothness: float = 0.0) -> LinearModel:
        """Set θ = (c, u) to the exact minimum of the loss + Σ_f penalty_f c_f² (`ridge_penalty`)
        from its normal equations.

        The penalised block of the coefficients c is positive definite for ridge > 0 and is
        solved by Cholesky (iteratively refined); the few unpenalised unknowns u (energy per
        element and the offset b) come from their Schur complement by least squares, so that
        where the data cannot tell them apart (every structure of one composition) they get the
        minimum-norm answer instead of an arbitrary split. Without a positive definite block,
        or where the solve leaves a residual, the whole system goes to least squares."""
        A, rhs = normal_equations
        n_c = int(self.feature_mask.sum())
        penalty = self.ridge_penalty(ridge, smoothness).to(A)
        penalised = A[:n_c, :n_c] + torch.diag(penalty[:n_c])
        factor, info = torch.linalg.cholesky_ex(penalised)
        theta = None
        if info == 0:

            def solve(right: Tensor) -> Tensor:  # penalised⁻¹ right, with two steps of refinement
                x = torch.zeros_like(right)
                for _ in range(3):
                    x = x + torch.cholesky_solve(right - penalised @ x, factor)
                return x

            coupling, own = A[:n_c, n_c:], rhs[:n_c, None]
            solved_coupling, solved_own = solve(coupling), solve(own)
            schur = A[n_c:, n_c:] - coupling.T @ solved_coupling
            # the subtraction leaves rounding of order eps·|A_uu|: singular values of the Schur
            # complement below n·eps·|A_uu| are directions the data do not determine
            noise = A.shape[0] * torch.finfo(A.dtype).eps * torch.linalg.matrix_norm(A[n_c:, n_c:], 2)
            largest = torch.linalg.matrix_norm(schur, 2)
            rcond = float(noise / largest) if largest > noise else 1.0
            u = torch.linalg.lstsq(schur, rhs[n_c:, None] - coupling.T @ solved_own, rcond=rcond, driver="gelsd").solution
            theta = torch.cat([solved_own - solved_coupling @ u, u])[:, 0]
        penalised = A + torch.diag(penalty)
        if theta is None or torch.linalg.vector_norm(penalised @ theta - rhs) > 1e-10 * torch.linalg.vector_norm(rhs):
            theta = torch.linalg.lstsq(penalised, rhs[:, None], driver="gelsd").solution[:, 0]
        self._set_theta(theta)
        return self

    def fit_ridge(self, graphs: list, weights, ridge: float = 1e-8, smoothness: float = 0.0) -> LinearModel:
        """Minimise the loss + its ridge penalty exactly."""
        return self.solve_ridge(self.normal_equations(graphs, weights), ridge, smoothness)

    def loss_gradient(self, graphs: list, weights, ridge: float = 0.0, smoothness: float = 0.0) -> Tensor:
        """∂(loss + Σ penalty c²)/∂θ, analytic; θ = (c over valid features, e per element, b)."""
        theta = self._theta().detach()
        gradient = 2.0 * self.ridge_penalty(ridge, smoothness) * theta
        for X, y, w, _, _ in self._chunks(graphs, weights):
            gradient = gradient + 2.0 * X.T @ (w * (X @ theta - y))
        return gradient

    def get_config(self) -> dict:
        return {
            "descriptor": self.descriptor.get_config(),
            "scaling": self.scaling.get_config(),
            "core_repulsion": self.core_repulsion is not None,
        }
