"""ASE calculator for any forcefit model.

It runs the same code as training: structure → neighbour lists → model →
`forcefit.models.forces.predict`. Units are eV, Å, eV/Å and eV/Å³ (ASE's).

Results: energy and free_energy (the model's Σ_i E_i: extensive, so two copies of
a system far apart have twice its energy and a supercell the same energy per
atom; on the reference data's scale, its zero carried by the energies per element),
energies (per atom E_i, adding up to the energy), forces, and stress for 3-D
periodic cells. Only a model trained with a global offset b
(`training.energy_offset: global`) predicts the reference's energy as energy − b,
b = `model.energy_offset` (printed by `forcefit info`). For descriptor models, extrapolation is counted, never raised:
`extrapolation` is the number of (atom, function) values outside the training
range, `extrapolating_atoms` flags each atom and `extrapolation_per_function`
counts atoms per descriptor column. A model trained by forcefit has an extrapolation grade
(models/grade.py): `gamma` per atom (≤ 1 inside the training environments, > 1 outside) and
`max_gamma`. A committee adds `energy_std` (eV), `forces_std` (per atom, eV/Å) and
`max_force_std`, and its γ is the largest of its members'.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from ase.calculators.calculator import Calculator as AseCalculator
from ase.calculators.calculator import all_changes

from forcefit.models.base import Potential
from forcefit.models.committee import spread
from forcefit.models.forces import predict
from forcefit.models.saving import load_model
from forcefit.structures import MIN_DISTANCE, Structure, check_min_distance


class Calculator(AseCalculator):
    implemented_properties = [
        "energy",
        "free_energy",
        "energies",
        "forces",
        "stress",
        "energy_std",
        "forces_std",
        "max_force_std",
        "extrapolation",
        "extrapolating_atoms",
        "extrapolation_per_function",
        "gamma",
        "max_gamma",
    ]

    def __init__(self, model: Potential, min_distance: float = MIN_DISTANCE, device: str | torch.device | None = None, **kwargs):
        """`model` is used as it is, never changed (forces come from gradients with respect
        to positions only); atoms closer than `min_distance` Å are refused. With `device`
        (say "cuda") the calculator evaluates a copy of the model there; on the CPU it uses
        the compiled engine, elsewhere autograd through the torch formulas."""
        super().__init__(**kwargs)
        self.min_distance = min_distance
        if device is not None and torch.device(device) != model.energy_offset.device:
            model = copy.deepcopy(model).to(device)
        self.model = model

    @classmethod
    def load(cls, path, trust_code: bool = False, **kwargs) -> Calculator:
        """A calculator for a model file (`trust_code`: see forcefit.models.saving)."""
        return cls(load_model(path, trust_code=trust_code), **kwargs)

    def check_state(self, atoms, tol: float = 1e-15) -> list[str]:
        """What changed since the last calculation among what a model reads: positions, numbers,
        cell and pbc, compared exactly. (ASE's own check compares every array property, charges
        and magnetic moments included, within tol: for small cells a noticeable part of an MD step.)"""
        if self.atoms is None:
            return list(all_changes)
        old, new = self.atoms, atoms
        pairs = (
            ("positions", old.positions, new.positions),
            ("numbers", old.numbers, new.numbers),
            ("cell", old.cell.array, new.cell.array),
            ("pbc", old.pbc, new.pbc),
        )
        return [name for name, a, b in pairs if a.shape != b.shape or not np.array_equal(a, b)]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        structure = Structure.from_atoms(self.atoms)
        # pairs only: the engine enumerates triplets per centre atom; the autograd path (a
        # committee on another device) needs them stored
        on_cpu = self.model.energy_offset.device.type == "cpu"
        graph = self.model.graph(structure, triplets=self.model.has_members and not on_cpu)
        distances = torch.linalg.vector_norm(graph.vectors(), dim=1)  # the safety check's and the grade's
        if self.model.cutoff >= self.min_distance:  # the graph's own pairs hold every close pair
            check_min_distance(structure, self.min_distance, (graph.pair_i.numpy(), graph.pair_j.numpy(), distances.numpy()))
        else:
            check_min_distance(structure, self.min_distance)
        wants_stress = bool(structure.pbc.all())  # always, from the same gradients: a later get_stress needs no second evaluation
        if self.model.has_members:
            members = self.model.member_predictions(graph, stress=wants_stress)  # descriptors once, for everything
            stats = spread(members["energy"], members["forces"], members["reference_energy"])
            energy, forces, features = float(stats["energy"][0]), stats["forces"], members["features"]
            atom_energies = members["atom_energies"].mean(dim=0)
            stress = members["stress"].mean(dim=0) if wants_stress else None
            self.results["energy_std"] = float(stats["energy_std"][0])
            self.results["forces_std"] = stats["forces_std"].double().cpu().numpy()
            self.results["max_force_std"] = float(stats["forces_std"].max())
        else:
            prediction = predict(self.model, graph, forces=True, stress=wants_stress)
            energy, forces, features = float(prediction.energy[0]), prediction.forces, prediction.features
            atom_energies, stress = prediction.atom_energies, prediction.stress
        self.results.update(
            {
                "energy": energy,
                "free_energy": energy,
                "energies": atom_energies.double().cpu().numpy(),
                "forces": forces.double().cpu().numpy(),
            }
        )
        bad = [name for name, value in (("energy", energy), ("forces", self.results["forces"])) if not np.all(np.isfinite(value))]
        if bad:
            raise FloatingPointError(
                f"the model returned non-finite {' and '.join(bad)} for this structure ({len(self.atoms)} atoms); "
                "it is far outside what the model was trained on, or the model file is broken"
            )
        if stress is not None:
            full = stress[0].double().cpu().numpy()
            self.results["stress"] = full[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        if features is not None:
            outside = self.model.outside_range(features, self.model.species(graph.numbers.to(features.device)))
            self.results["extrapolation"] = int(outside.sum())
            self.results["extrapolating_atoms"] = outside.any(dim=1).cpu().numpy()
            self.results["extrapolation_per_function"] = outside.sum(dim=0).cpu().numpy()
            if self.model.has_grade:
                species = self.model.species(graph.numbers)
                close = self.model.close_contact_grade(species, graph.pair_i, graph.pair_j, distances, (0, len(species)))
                gamma = self.model.extrapolation_grade(features.cpu(), species, close)
                self.results["gamma"] = gamma.numpy()
                self.results["max_gamma"] = float(gamma.max()) if gamma.numel() else 0.0
