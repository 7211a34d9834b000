"""Pair potentials: E = ½ Σ_i Σ_{j≠i} φ_{Z_i Z_j}(r_ij), each form one function of r.

The base class does neighbours, sums, element pairs and the smooth cutoff; a form
only says φ(r) for its parameters. Cutoff treatments (`cutoff_mode`):

    shift   φ(r) − φ(r_c) for r < r_c: energy continuous, force jumps by φ'(r_c)
            (what LAMMPS does with `pair_modify shift yes`)
    switch  φ(r) · S(r) with S = 1 below r_on, S = 0 above r_c and
            S = 1 − 10x³ + 15x⁴ − 6x⁵, x = (r − r_on)/(r_c − r_on), in between:
            energy and force continuous (default)

Physical constraints are kept by parametrisation: every positive quantity (ε, σ,
A, B, D, α, r0) is stored as its logarithm. Parameters live per element pair
(`mixing: free`) or, for Lennard-Jones, per element combined with
Lorentz–Berthelot rules σ_ij = (σ_i + σ_j)/2, ε_ij = √(ε_i ε_j) (`mixing: lorentz-berthelot`).
Each atom also carries its element's energy e_Z (`element_energies`, the reference data's
zero, models/base.py), so E = ½ Σ φ + Σ_i e_{Z_i}.
"""

from __future__ import annotations

import importlib
import math
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from forcefit.data import collate
from forcefit.models.base import Potential, composition_counts
from forcefit.models.forces import predict
from forcefit.models.registry import register
from forcefit.settings import ModelSettings

CUTOFF_MODES = ("shift", "switch")


class PairSettings(ModelSettings):
    """The `model` keys of the pair potentials (lj, morse)."""

    parameters: dict | None = Field(
        None,
        description='starting parameters per element pair "A-B" (or per element "A" with mixing: lorentz-berthelot), '
        'e.g. {"Ar-Ar": {"epsilon": 0.01, "sigma": 3.4}}',
    )
    cutoff_mode: Literal[CUTOFF_MODES] = Field("switch", description="shift | switch: how φ goes to zero at the cutoff")
    switch_on: float | None = Field(None, description="Å, start of the switching region (default 0.9 cutoff)")
    mixing: Literal["free", "lorentz-berthelot"] = Field(
        "free", description="free (a parameter set per pair) | lorentz-berthelot (per element, mixed)"
    )


class CustomPairSettings(PairSettings):
    """The `model` keys of a user's pair form (kind: pair)."""

    function: str | None = Field(None, description='"module:function" computing φ(r, params) in PyTorch')


class PairPotential(Potential):
    """Sums φ over the full neighbour list (each pair seen from both atoms, hence ½)."""

    parameter_names: tuple[str, ...] = ()
    example = "{'Ar-Ar': {'epsilon': 0.01, 'sigma': 3.4}}"
    Settings = PairSettings

    @classmethod
    def from_settings(cls, m: PairSettings, elements: list[str]) -> PairPotential:
        if not m.parameters:
            raise ValueError(f"model.parameters: a {cls.kind} potential needs starting parameters per element pair, e.g. {cls.example}")
        return cls(
            elements,
            m.cutoff,
            m.parameters,
            cutoff_mode=m.cutoff_mode,
            switch_on=m.switch_on,
            mixing=m.mixing,
            core_repulsion=cls.core_repulsion_from_config(m),
            **cls._form_options(m),
        )

    @classmethod
    def _form_options(cls, m: PairSettings) -> dict:
        """What a form adds to the constructor from the config (a user form: its function)."""
        return {}

    def __init__(
        self,
        elements: list[str],
        cutoff: float,
        parameters: dict,
        cutoff_mode: str = "switch",
        switch_on: float | None = None,
        mixing: str = "free",
        core_repulsion: bool = False,
    ):
        super().__init__(elements, cutoff, core_repulsion=core_repulsion)
        if cutoff_mode not in CUTOFF_MODES:
            raise ValueError(f"cutoff_mode {cutoff_mode!r}: choose one of {CUTOFF_MODES}")
        if mixing not in ("free", "lorentz-berthelot"):
            raise ValueError(f"mixing {mixing!r}: choose 'free' or 'lorentz-berthelot'")
        if mixing == "lorentz-berthelot" and set(self.parameter_names) != {"epsilon", "sigma"}:
            raise ValueError("Lorentz–Berthelot mixing needs epsilon/sigma parameters (Lennard-Jones)")
        self.cutoff_mode = cutoff_mode
        self.switch_on = float(switch_on) if switch_on is not None else 0.9 * cutoff
        if cutoff_mode == "switch" and not 0 < self.switch_on < cutoff:
            raise ValueError(f"switch_on ({self.switch_on}) must lie between 0 and the cutoff ({cutoff})")
        self.mixing = mixing
        n = len(self.elements)
        self.keys = (
            [f"{a}-{b}" for i, a in enumerate(self.elements) for b in self.elements[i:]] if mixing == "free" else list(self.elements)
        )
        table = torch.zeros((n, n), dtype=torch.long)
        if mixing == "free":
            for i in range(n):
                for j in range(n):
                    lo, hi = sorted((i, j))
                    table[i, j] = self.keys.index(f"{self.elements[lo]}-{self.elements[hi]}")
        self.register_buffer("pair_table", table, persistent=False)
        if not isinstance(parameters, dict) or not all(isinstance(v, dict) for v in parameters.values()):
            raise ValueError(
                f"{type(self).__name__}: parameters must map each {'element pair' if mixing == 'free' else 'element'} "
                f"to its values, e.g. {self.example}; got {parameters!r}"
            )
        unknown = [f"{k}.{name}" for k, v in parameters.items() for name in v if name not in self.parameter_names]
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown parameter(s) {unknown}; this form has {list(self.parameter_names)}")
        missing = [k for k in self.keys if k not in parameters]
        if missing:
            raise ValueError(
                f"{type(self).__name__}: no parameters for {missing}; give one entry per {'element pair' if mixing == 'free' else 'element'} as 'A-B' or 'A'"
            )
        self.log_parameters = torch.nn.ParameterDict()
        for name in self.parameter_names:
            values = []
            for key in self.keys:
                value = float(parameters[key][name])
                if value <= 0:
                    raise ValueError(f"{type(self).__name__} {key}: {name} must be positive, got {value}")
                values.append(math.log(value))
            self.log_parameters[name] = torch.nn.Parameter(torch.tensor(values, dtype=torch.float64))
        self.element_energies = torch.nn.Parameter(torch.zeros(n, dtype=torch.float64))

    # -- what a form provides
    def phi(self, r: Tensor, p: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    # -- shared machinery
    def pair_parameters(self, species_i: Tensor, species_j: Tensor) -> dict[str, Tensor]:
        values = {name: torch.exp(v) for name, v in self.log_parameters.items()}
        if self.mixing == "free":
            index = self.pair_table[species_i, species_j]
            return {name: v[index] for name, v in values.items()}
        return {
            "epsilon": torch.sqrt(values["epsilon"][species_i] * values["epsilon"][species_j]),
            "sigma": 0.5 * (values["sigma"][species_i] + values["sigma"][species_j]),
        }

    def parameters_by_key(self) -> dict[str, dict[str, float]]:
        """Physical parameter values per element pair (or element), plain floats."""
        return {key: {name: float(torch.exp(v[n].detach())) for name, v in self.log_parameters.items()} for n, key in enumerate(self.keys)}

    def pair_energies(self, r: Tensor, p: dict[str, Tensor]) -> Tensor:
        """φ with the cutoff treatment applied, for distances r < r_c."""
        if self.cutoff_mode == "shift":
            return self.phi(r, p) - self.phi(torch.full_like(r, self.cutoff), p)
        x = ((r - self.switch_on) / (self.cutoff - self.switch_on)).clamp(0.0, 1.0)
        switch = 1.0 - x**3 * (10.0 - 15.0 * x + 6.0 * x * x)
        return self.phi(r, p) * switch

    def atom_energies(self, batch, vectors: Tensor) -> Tensor:
        species = self.species(batch.numbers)
        r = torch.linalg.vector_norm(vectors, dim=1)
        p = self.pair_parameters(species[batch.pair_i], species[batch.pair_j])
        inside = r < self.cutoff
        energies = torch.where(inside, self.pair_energies(torch.where(inside, r, torch.full_like(r, self.cutoff)), p), torch.zeros_like(r))
        return self.element_energies[species].to(r).index_add(0, batch.pair_i, 0.5 * energies)

    def initialise(self, graphs: list) -> None:
        """Start the element energies (and b with a global offset) where the pair sum's energy
        error is least squares on composition."""

        batch = collate(graphs)
        with torch.no_grad():
            self.element_energies.zero_()
        pair_energy = predict(self, batch, forces=False).energy
        self.start_energy_zero(self.element_energies, composition_counts(self, batch), batch.ref_energy - pair_energy)

    def get_config(self) -> dict:
        return {
            "elements": self.elements,
            "cutoff": self.cutoff,
            "parameters": self.parameters_by_key(),
            "cutoff_mode": self.cutoff_mode,
            "switch_on": self.switch_on,
            "mixing": self.mixing,
            "core_repulsion": self.core_repulsion is not None,
        }


@register
class LennardJones(PairPotential):
    """φ(r) = 4ε[(σ/r)¹² − (σ/r)⁶] = A/r¹² − B/r⁶ with A = 4εσ¹², B = 4εσ⁶."""

    kind = "lj"
    parameter_names = ("epsilon", "sigma")

    def phi(self, r, p):
        s6 = (p["sigma"] / r) ** 6
        return 4.0 * p["epsilon"] * (s6 * s6 - s6)


@register
class Morse(PairPotential):
    """φ(r) = D [e^{−2α(r − r0)} − 2 e^{−α(r − r0)}]: well depth D at r0, width 1/α."""

    kind = "morse"
    parameter_names = ("D", "alpha", "r0")
    example = "{'H-H': {'D': 4.5, 'alpha': 2.0, 'r0': 0.74}}"

    def phi(self, r, p):
        e = torch.exp(-p["alpha"] * (r - p["r0"]))
        return p["D"] * (e * e - 2.0 * e)


@register
class CustomPair(PairPotential):
    """A user's form: `function` is "module:name" of φ(r, params) written in PyTorch,
    params a dict of positive tensors named as in `parameters`."""

    kind = "pair"
    Settings = CustomPairSettings
    example = "{'Ar-Ar': {'a': 0.1, 'b': 3.0}} with names your φ reads"

    @classmethod
    def _form_options(cls, m: CustomPairSettings) -> dict:
        if not m.function:
            raise ValueError("model.function: a 'pair' potential needs its φ(r, params) as 'module:function'")
        return {"function": m.function}

    def __init__(
        self, elements, cutoff, parameters, function: str, cutoff_mode="switch", switch_on=None, mixing="free", core_repulsion=False
    ):
        module_name, _, name = function.partition(":")
        try:
            self._function = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError, ValueError) as err:
            raise ValueError(f"pair function {function!r}: cannot import it as 'module:function' ({err})") from None
        self.function = function
        first = next(iter(parameters.values()))
        self.parameter_names = tuple(first)
        super().__init__(elements, cutoff, parameters, cutoff_mode, switch_on, mixing, core_repulsion)

    def phi(self, r, p):
        return self._function(r, p)

    def get_config(self) -> dict:
        return {**super().get_config(), "function": self.function}


def lj_from_two_points(r0: float, energy: float, force: float) -> dict[str, float]:
    """Exact A, B (and ε, σ) of U = A/r¹² − B/r⁶ through U(r0) = energy, −U'(r0) = force.

    U = A r⁻¹² − B r⁻⁶ and F = 12 A r⁻¹³ − 6 B r⁻⁷ are linear in A and B:
        A = r0¹² (F r0 − 6U) / 6,   B = r0⁶ (F r0 − 12U) / 6,
        ε = B² / (4A),   σ = (A/B)^{1/6}.
    Raises ValueError when A ≤ 0 or B ≤ 0 (no physical Lennard-Jones through the point).
    """
    if r0 <= 0:
        raise ValueError(f"r0 must be positive, got {r0}")
    A = r0**12 * (force * r0 - 6.0 * energy) / 6.0
    B = r0**6 * (force * r0 - 12.0 * energy) / 6.0
    if A <= 0 or B <= 0:
        raise ValueError(
            f"no physical Lennard-Jones through r0={r0}, U={energy}, F={force}: A={A:.6g}, B={B:.6g} "
            "(both must be positive; a LJ pair has U < 0 beyond its minimum and F > 0 inside it)"
        )
    return {"A": A, "B": B, "epsilon": B * B / (4.0 * A), "sigma": (A / B) ** (1.0 / 6.0)}
