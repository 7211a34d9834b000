"""Behler–Parrinello neural-network potential (Behler & Parrinello, PRL 98, 146401 (2007)).

    E = Σ_i [ s · NN_{Z_i}(scale(G_i)) + e_ref(Z_i) ]

G_i are the atom's symmetry functions, scaled with statistics of the training
set; NN_Z is one multilayer perceptron per element; s (`energy_scale`) sets the
energy unit of the network output; e_ref(Z) are per-element reference energies.

e_ref carries the reference data's zero: before training it is set by least squares
on composition, E_ref ≈ Σ_Z N_Z e_Z (no intercept; minimum-norm where compositions
cannot tell elements apart), and it is trained with the networks, so Σ_i E_i is on the
reference's scale. With the loss's global offset b (`training.energy_offset: global`)
the regression has an intercept c instead, b starts at −c, and e_ref = 0 for
compositions that never vary (see models/base.py).
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import Tensor

from forcefit.descriptors.engine import ACTIVATION_CODES, Network
from forcefit.descriptors.symmetry_functions import SymmetryFunctions
from forcefit.models.base import DescriptorPotential, DescriptorSettings
from forcefit.models.registry import register


class _Elementwise(torch.nn.Module):
    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, x: Tensor) -> Tensor:
        return self.function(x)


# n2p2's less common activations: gaussian exp(−x²/2), cos x, 1 − logistic(x), exp(−x), x².
ACTIVATIONS = {
    "linear": torch.nn.Identity,
    "tanh": torch.nn.Tanh,
    "logistic": torch.nn.Sigmoid,
    "softplus": torch.nn.Softplus,
    "silu": torch.nn.SiLU,
    "relu": torch.nn.ReLU,
    "gelu": torch.nn.GELU,
    "gaussian": lambda: _Elementwise(lambda x: torch.exp(-0.5 * x * x)),
    "cos": lambda: _Elementwise(torch.cos),
    "revlogistic": lambda: _Elementwise(lambda x: 1.0 - torch.sigmoid(x)),
    "negexp": lambda: _Elementwise(lambda x: torch.exp(-x)),
    "harmonic": lambda: _Elementwise(lambda x: x * x),
}


def _per_element(value, elements: list[str], name: str) -> dict:
    if isinstance(value, dict):
        missing = set(elements) - set(value)
        if missing:
            raise ValueError(f"{name}: no entry for element(s) {sorted(missing)}")
        return {e: list(value[e]) for e in elements}
    return {e: list(value) for e in elements}


class ElementNetwork(torch.nn.Sequential):
    """Dense layers n_in → hidden… → 1, with one activation name per layer."""

    def __init__(self, n_in: int, hidden: list[int], activations: list[str]):
        if len(activations) != len(hidden) + 1:
            raise ValueError(f"{len(hidden)} hidden layers need {len(hidden) + 1} activations (last is the output's), got {activations}")
        unknown = [a for a in activations if a not in ACTIVATIONS]
        if unknown:
            raise ValueError(f"unknown activation(s) {unknown}; choose from {sorted(ACTIVATIONS)}")
        layers, width = [], n_in
        for n_out, name in zip(hidden + [1], activations):
            layers += [torch.nn.Linear(width, n_out, dtype=torch.float64), ACTIVATIONS[name]()]
            width = n_out
        super().__init__(*layers)


class BPNNSettings(DescriptorSettings):
    """The `model` keys of a Behler–Parrinello network: its descriptor's, and the network's."""

    hidden: list[int] = Field([25, 25], description="widths of the hidden layers")
    activation: str = Field("tanh", description="hidden-layer activation (tanh, softplus, silu, gelu, relu, logistic, …; models/bpnn.py)")

    @field_validator("hidden")
    @classmethod
    def _widths(cls, value: list[int]) -> list[int]:
        if not value or min(value) < 1:
            raise ValueError(f"{value}; expected one width ≥ 1 per hidden layer")
        return value


@register
class BPNN(DescriptorPotential):
    kind = "bpnn"
    Settings = BPNNSettings

    @classmethod
    def from_settings(cls, m: BPNNSettings, elements: list[str]) -> BPNN:
        return cls(
            cls.descriptor_from_settings(m, elements),
            hidden=m.hidden,
            activation=m.activation,
            scaling={"mode": m.scaling},
            core_repulsion=cls.core_repulsion_from_config(m),
        )

    def __init__(
        self,
        descriptor: dict | SymmetryFunctions,
        hidden: list[int] | dict = (25, 25),
        activation: str | dict = "tanh",
        scaling: dict | None = None,
        core_repulsion: bool = False,
    ):
        super().__init__(descriptor, scaling, core_repulsion)
        self.hidden = _per_element(hidden, self.elements, "hidden")
        if isinstance(activation, str):
            activation = {e: [activation] * len(self.hidden[e]) + ["linear"] for e in self.elements}
        self.activations = _per_element(activation, self.elements, "activation")
        self.networks = torch.nn.ModuleList(
            ElementNetwork(n, self.hidden[e], self.activations[e]) for e, n in zip(self.elements, self.descriptor.n_features_per_element)
        )
        self.register_buffer("energy_scale", torch.ones((), dtype=torch.float64))
        self.atom_reference = torch.nn.Parameter(torch.zeros(len(self.elements), dtype=torch.float64))

    def atom_energies_from_features(self, features: Tensor, species: Tensor) -> Tensor:
        scaled = self.scaling(features, species)
        out = features.new_zeros(features.shape[0])
        for e, (network, n) in enumerate(zip(self.networks, self.descriptor.n_features_per_element)):
            rows = torch.nonzero(species == e).squeeze(1)
            if rows.numel():
                out = out.index_copy(0, rows, network(scaled[rows, :n]).squeeze(1))
        return self.energy_scale * out + self.atom_reference[species]

    def compiled_network(self) -> Network | None:
        """The networks, feature scaling, output scale and e_ref as the symmetry-function engine's
        ENERGY mode reads them (E_i and ∂E_i/∂G_i computed per atom inside the engine, so that
        each atom's terms are evaluated once); None where that mode does not apply (ACE
        descriptors, or a dtype other than float64, whose numbers it would not reproduce)."""
        if not hasattr(self.descriptor, "energies_and_pair_gradients") or self.energy_scale.dtype != torch.float64:
            return None
        layer_start, inputs, outputs, codes, weights, biases, width = [0], [], [], [], [], [], 0
        for e, network in enumerate(self.networks):
            linear = [layer for layer in network if isinstance(layer, torch.nn.Linear)]
            for layer, name in zip(linear, self.activations[self.elements[e]]):
                inputs.append(layer.in_features), outputs.append(layer.out_features), codes.append(ACTIVATION_CODES[name])
                weights.append(layer.weight.detach().reshape(-1)), biases.append(layer.bias.detach())
            layer_start.append(len(inputs))
            width = max(width, self.descriptor.n_features_per_element[e] + sum(layer.out_features for layer in linear))
        weight_start = np.cumsum([0] + [i * o for i, o in zip(inputs, outputs)])[:-1]
        bias_start = np.cumsum([0] + outputs)[:-1]
        return Network(
            np.asarray(self.descriptor.n_features_per_element, dtype=np.int64),
            *(t.detach().numpy() for t in (self.scaling.factor, self.scaling.reference, self.scaling.offset)),
            *(np.asarray(x, dtype=np.int64) for x in (layer_start, inputs, outputs, weight_start, bias_start, codes)),
            torch.cat(weights).numpy(), torch.cat(biases).numpy(), float(self.energy_scale), self.atom_reference.detach().numpy(), width,
        )  # fmt: skip

    # ------------------------------------------------------------------ set-up

    def initialise(self, graphs: list) -> None:
        """Fit the feature scaling, e_ref (and b with a global offset) and the output scale to training graphs."""
        counts, energies, rms = self.fit_scaling(graphs)
        self.start_energy_zero(self.atom_reference, counts, energies)
        with torch.no_grad():
            self.energy_scale.fill_(rms if rms > 0 else 1.0)

    def get_config(self) -> dict:
        return {
            "descriptor": self.descriptor.get_config(),
            "hidden": self.hidden,
            "activation": self.activations,
            "scaling": self.scaling.get_config(),
            "core_repulsion": self.core_repulsion is not None,
        }
