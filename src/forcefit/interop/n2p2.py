"""n2p2/RuNNer potentials (input.nn, scaling.data, weights.NNN.data) ↔ forcefit BPNN.

Facts used (n2p2 2.x, Singraber et al., JCTC 15, 1827 and 3075 (2019)):
- Symmetry-function parameters in input.nn are in the file's physical units;
  n2p2 rescales them together with the positions when it normalises, so the
  functions' values do not depend on `conv_length`.
- Within each element, n2p2 sorts its symmetry functions (type, cutoff, r_c, η,
  r_s, ζ, λ, neighbour elements); scaling.data and the first network layer
  follow that order. Elements are indexed in order of atomic number.
- With normalisation, the network's summed output E_int relates to the physical
  energy as E = E_int / conv_energy + N · mean_energy; `atom_energy` offsets (file
  units) are added per atom.
- weights.NNN.data (NNN = atomic number) lists "a" connections with (layer,
  neuron) of both ends and "b" biases with (layer, neuron), 1-based neurons.

In forcefit terms: E_i = s · NN(G_i) + e_ref(Z_i) with s = energy_unit / conv_energy
and e_ref = (mean_energy + atom_energy(Z)) · energy_unit (eV); lengths in Å.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase.data import atomic_numbers

from forcefit.descriptors import SymmetryFunction, SymmetryFunctions
from forcefit.descriptors.cutoff import CUTOFF_NAMES, CUTOFF_TYPES
from forcefit.interop.lammps import zbl_styles
from forcefit.models.bpnn import BPNN

ACTIVATION_LETTERS = {
    "l": "linear",
    "t": "tanh",
    "s": "logistic",
    "p": "softplus",
    "r": "relu",
    "g": "gaussian",
    "c": "cos",
    "S": "revlogistic",
    "e": "negexp",
    "h": "harmonic",
}
LETTER_OF = {name: letter for letter, name in ACTIVATION_LETTERS.items()}
KIND_OF_TYPE = {2: "radial", 3: "narrow", 9: "wide"}
TYPE_OF_KIND = {kind: t for t, kind in KIND_OF_TYPE.items()}

PREDICTION_KEYWORDS = {
    "number_of_elements",
    "elements",
    "atom_energy",
    "cutoff_type",
    "symfunction_short",
    "scale_symmetry_functions",
    "scale_min_short",
    "scale_max_short",
    "center_symmetry_functions",
    "scale_symmetry_functions_sigma",
    "global_hidden_layers_short",
    "global_nodes_short",
    "global_activation_short",
    "element_nodes_short",
    "mean_energy",
    "conv_length",
    "conv_energy",
    "nnp_type",
    "nn_type",
}
# Keywords that steer n2p2's training only; they do not change what the potential predicts.
TRAINING_KEYWORDS = {
    "random_seed",
    "test_fraction",
    "epochs",
    "use_short_forces",
    "rmse_threshold",
    "rmse_threshold_energy",
    "rmse_threshold_force",
    "rmse_threshold_charge",
    "rmse_threshold_trials",
    "rmse_threshold_trials_energy",
    "rmse_threshold_trials_force",
    "rmse_threshold_trials_charge",
    "energy_fraction",
    "force_fraction",
    "charge_fraction",
    "use_old_weights_short",
    "use_old_weights_charge",
    "weights_min",
    "weights_max",
    "nguyen_widrow_weights_short",
    "nguyen_widrow_weights_charge",
    "precondition_weights",
    "main_error_metric",
    "write_trainpoints",
    "write_trainforces",
    "write_traincharges",
    "write_weights_epoch",
    "write_neuronstats",
    "write_trainlog",
    "repeated_energy_update",
    "updater_type",
    "parallel_mode",
    "jacobian_mode",
    "update_strategy",
    "selection_mode",
    "selection_mode_energy",
    "selection_mode_force",
    "selection_mode_charge",
    "task_batch_size_energy",
    "task_batch_size_force",
    "task_batch_size_charge",
    "gradient_type",
    "gradient_eta",
    "gradient_adam_eta",
    "gradient_adam_beta1",
    "gradient_adam_beta2",
    "gradient_adam_epsilon",
    "kalman_type",
    "kalman_epsilon",
    "kalman_eta",
    "kalman_etatau",
    "kalman_etamax",
    "kalman_q0",
    "kalman_qtau",
    "kalman_qmin",
    "kalman_lambda_short",
    "kalman_nue_short",
    "memorize_symfunc_results",
    "force_weight",
    "short_energy_error_threshold",
    "short_force_error_threshold",
    "short_energy_fraction",
    "short_force_fraction",
}


def _read_settings(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line number, keyword, arguments); '#' and '!' start comments."""
    entries = []
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].split("!", 1)[0].strip()
        if not line:
            continue
        keyword, *args = line.split()
        if keyword not in PREDICTION_KEYWORDS and keyword not in TRAINING_KEYWORDS:
            raise ValueError(f"{path} line {lineno}: keyword {keyword!r} is not supported by forcefit's n2p2 import")
        entries.append((lineno, keyword, args))
    return entries


def _sort_key(f: SymmetryFunction, element_index: dict) -> tuple:
    neighbors = sorted(element_index[e] for e in f.neighbors)
    return (TYPE_OF_KIND[f.kind], f.rc, f.eta, f.rs, f.zeta, f.lam, *neighbors)


def _parse_symmetry_function(args: list[str], path: Path, lineno: int, length_unit: float) -> SymmetryFunction:
    try:
        center, sf_type = args[0], int(args[1])
        if sf_type == 2:
            neighbor, eta, rs, rc = args[2], float(args[3]), float(args[4]), float(args[5])
            if len(args) != 6:
                raise IndexError
            return SymmetryFunction("radial", center, (neighbor,), eta=eta / length_unit**2, rc=rc * length_unit, rs=rs * length_unit)
        if sf_type in (3, 9):
            if len(args) not in (8, 9):
                raise IndexError
            e1, e2, eta, lam, zeta, rc = args[2], args[3], float(args[4]), float(args[5]), float(args[6]), float(args[7])
            rs = float(args[8]) if len(args) == 9 else 0.0
            return SymmetryFunction(
                KIND_OF_TYPE[sf_type],
                center,
                (e1, e2),
                eta=eta / length_unit**2,
                rc=rc * length_unit,
                rs=rs * length_unit,
                lam=lam,
                zeta=zeta,
            )
    except (IndexError, ValueError) as err:
        raise ValueError(
            f"{path} line {lineno}: cannot read symmetry function {' '.join(args)!r} ({err or 'wrong number of fields'})"
        ) from None
    raise ValueError(f"{path} line {lineno}: symmetry function type {sf_type} is not supported (types 2, 3 and 9 are)")


@dataclass
class _InputNN:
    """An input.nn's keywords: those given once (with their line), the symmetry functions, the
    atom energies and the per-element layer widths (n2p2 allows these several times)."""

    path: Path
    single: dict[str, tuple[int, list[str]]]
    functions: list[tuple[int, list[str]]]
    atom_energy: dict[str, float]
    element_nodes: list[tuple[int, list[str]]]

    def value(self, keyword: str, default: list[str] | None = None) -> list[str]:
        if keyword not in self.single:
            if default is None:
                raise ValueError(f"{self.path}: required keyword {keyword!r} is missing")
            return default
        return self.single[keyword][1]


def _read_input_nn(path: Path) -> _InputNN:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    settings = _InputNN(path, {}, [], {}, [])
    for lineno, keyword, args in _read_settings(path):
        if keyword == "symfunction_short":
            settings.functions.append((lineno, args))
        elif keyword == "atom_energy":
            settings.atom_energy[args[0]] = float(args[1])
        elif keyword == "element_nodes_short":
            settings.element_nodes.append((lineno, args))
        elif keyword in settings.single and keyword in PREDICTION_KEYWORDS:
            raise ValueError(f"{path} line {lineno}: {keyword!r} given twice (first at line {settings.single[keyword][0]})")
        else:
            settings.single[keyword] = (lineno, args)
    nnp_type = (settings.single.get("nnp_type") or settings.single.get("nn_type") or (0, ["1"]))[1]
    if nnp_type[0] != "1":
        raise ValueError(f"{path}: nnp_type {nnp_type[0]} is not supported (only short-range, type 1)")
    return settings


def _descriptor(nn: _InputNN, length_unit: float) -> SymmetryFunctions:
    """The symmetry functions of input.nn, in n2p2's order per element."""
    elements = sorted(nn.value("elements"), key=lambda e: atomic_numbers[e])
    if int(nn.value("number_of_elements")[0]) != len(elements):
        raise ValueError(f"{nn.path}: number_of_elements does not match the elements list {elements}")
    cutoff_args = nn.value("cutoff_type")
    if int(cutoff_args[0]) not in CUTOFF_NAMES:
        raise ValueError(f"{nn.path}: unknown cutoff_type {cutoff_args[0]}")
    cutoff_alpha = float(cutoff_args[1]) if len(cutoff_args) > 1 else 0.0
    index = {e: n for n, e in enumerate(elements)}
    parsed = [_parse_symmetry_function(args, nn.path, lineno, length_unit) for lineno, args in nn.functions]
    parsed.sort(key=lambda f: (index[f.center], _sort_key(f, index)))
    return SymmetryFunctions(elements, parsed, CUTOFF_NAMES[int(cutoff_args[0])], cutoff_alpha)


def _scaling(nn: _InputNN) -> dict:
    """The feature scaling input.nn asks for (scaling.data holds its statistics)."""
    scale, center, sigma = (
        keyword in nn.single for keyword in ("scale_symmetry_functions", "center_symmetry_functions", "scale_symmetry_functions_sigma")
    )
    mode = "scalesigma" if sigma else ("scalecenter" if scale and center else "scale" if scale else "center" if center else "none")
    return {"mode": mode, "s_min": float(nn.value("scale_min_short", ["0.0"])[0]), "s_max": float(nn.value("scale_max_short", ["1.0"])[0])}


def _layers(nn: _InputNN, elements: list[str]) -> tuple[dict, dict]:
    """Hidden-layer widths and activations per element (global, with element_nodes_short overrides)."""
    n_hidden = int(nn.value("global_hidden_layers_short")[0])
    nodes = [int(n) for n in nn.value("global_nodes_short")]
    letters = nn.value("global_activation_short")
    if len(nodes) != n_hidden or len(letters) != n_hidden + 1:
        raise ValueError(
            f"{nn.path}: {n_hidden} hidden layers need {n_hidden} node counts and {n_hidden + 1} activations, got {nodes} and {letters}"
        )
    unknown = [a for a in letters if a not in ACTIVATION_LETTERS]
    if unknown:
        raise ValueError(f"{nn.path}: unknown activation letter(s) {unknown}; n2p2 letters are {sorted(ACTIVATION_LETTERS)}")
    hidden = {e: list(nodes) for e in elements}
    for lineno, args in nn.element_nodes:
        element, layer, count = args[0], int(args[1]), int(args[2])
        if element not in hidden or not 1 <= layer <= n_hidden:
            raise ValueError(f"{nn.path} line {lineno}: element_nodes_short {' '.join(args)}: unknown element or layer")
        hidden[element][layer - 1] = count
    return hidden, {e: [ACTIVATION_LETTERS[a] for a in letters] for e in elements}


def load_potential(directory, *, length_unit: float, energy_unit: float) -> BPNN:
    """Build a BPNN from an n2p2 directory. Units: Å and eV per file unit
    (e.g. ase.units.Bohr and ase.units.Hartree)."""
    directory = Path(directory)
    nn = _read_input_nn(directory / "input.nn")
    descriptor = _descriptor(nn, length_unit)
    elements = descriptor.elements
    hidden, activation = _layers(nn, elements)
    model = BPNN(descriptor, hidden=hidden, activation=activation, scaling=_scaling(nn))
    _load_scaling(model, directory / "scaling.data")
    for e, network in zip(elements, model.networks):
        _load_weights(network, directory / f"weights.{atomic_numbers[e]:03d}.data")
    mean_energy = float(nn.value("mean_energy", ["0.0"])[0])
    conv_energy = float(nn.value("conv_energy", ["1.0"])[0])
    with torch.no_grad():
        model.energy_scale.fill_(energy_unit / conv_energy)
        model.atom_reference.copy_(
            torch.tensor([(mean_energy + nn.atom_energy.get(e, 0.0)) * energy_unit for e in elements], dtype=torch.float64)
        )
    return model


def _numeric_rows(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            yield lineno, line.split()


def _load_scaling(model: BPNN, path: Path) -> None:
    n_per = model.descriptor.n_features_per_element
    stats = torch.zeros((4, len(model.elements), model.descriptor.n_features), dtype=torch.float64)
    seen = np.zeros((len(model.elements), model.descriptor.n_features), dtype=bool)
    for lineno, fields in _numeric_rows(path):
        if len(fields) not in (5, 6):
            raise ValueError(f"{path} line {lineno}: expected 'element index min max mean [sigma]', got {len(fields)} fields")
        e, k = int(fields[0]) - 1, int(fields[1]) - 1
        if not (0 <= e < len(n_per) and 0 <= k < n_per[e]):
            raise ValueError(f"{path} line {lineno}: element {e + 1} / function {k + 1} does not exist in input.nn")
        values = [float(x) for x in fields[2:]] + ([0.0] if len(fields) == 5 else [])
        stats[:, e, k] = torch.tensor(values, dtype=torch.float64)
        seen[e, k] = True
    missing = [(e + 1, k + 1) for e, n in enumerate(n_per) for k in range(n) if not seen[e, k]]
    if missing:
        raise ValueError(f"{path}: no scaling data for (element, function) {missing[:5]}")
    model.scaling.set_statistics(*stats)


def _load_weights(network, path: Path) -> None:
    linears = [m for m in network if isinstance(m, torch.nn.Linear)]
    seen = [torch.zeros_like(l.weight, dtype=torch.bool) for l in linears] + [torch.zeros_like(l.bias, dtype=torch.bool) for l in linears]
    with torch.no_grad():
        for lineno, fields in _numeric_rows(path):
            try:
                number = float(fields[0])
                if fields[1] == "a" and len(fields) == 7:
                    layer, n_s, n_e = int(fields[3]), int(fields[4]) - 1, int(fields[6]) - 1
                    linears[layer].weight[n_e, n_s] = number
                    seen[layer][n_e, n_s] = True
                elif fields[1] == "b" and len(fields) == 5:
                    layer, n_e = int(fields[3]) - 1, int(fields[4]) - 1
                    linears[layer].bias[n_e] = number
                    seen[len(linears) + layer][n_e] = True
                else:
                    raise ValueError("expected 'value a index l_s n_s l_e n_e' or 'value b index l_e n_e'")
            except (IndexError, ValueError) as err:
                raise ValueError(
                    f"{path} line {lineno}: {err}; the network in input.nn has layers {[tuple(l.weight.shape[::-1]) for l in linears]}"
                ) from None
    if not all(s.all() for s in seen):
        raise ValueError(f"{path}: fewer connections than the network in input.nn needs")


def _n2p2_statistics(scaling, element: int, feature: int) -> list[float]:
    """min, max, mean, sigma of one symmetry function as n2p2 must read them.

    n2p2 scales with factor (S_max − S_min)/(max − min) (or /σ): a function that was
    constant on the training set (max = min, e.g. O–O around the only oxygen) would
    give n2p2 an infinite factor and NaN energies. forcefit uses factor 1 there, so the
    file states the width that reproduces forcefit's factor exactly."""
    minimum, maximum, mean, sigma = (float(getattr(scaling, name)[element, feature]) for name in ("minimum", "maximum", "mean", "sigma"))
    width = (scaling.s_max - scaling.s_min) / float(scaling.factor[element, feature])
    if scaling.mode in ("scale", "scalecenter") and not maximum > minimum:
        maximum = minimum + width
    if scaling.mode == "scalesigma" and not sigma > 0:
        sigma = width
    return [minimum, maximum, mean, sigma]


def short_range_caveats(model: BPNN) -> list[str]:
    """What n2p2's files cannot hold of the model's hand-over at short range, as a person reads it
    (empty when the model has none): the inner switch of the descriptors and the core repulsion."""
    caveats = []
    if bool((model.descriptor.inner_radius > 0).any()):
        caveats.append(
            "n2p2 has no inner cutoff: for pairs closer than the training data's shortest distance "
            "(per element pair) n2p2's energies differ from forcefit's"
        )
    if model.core_repulsion is not None:
        caveats.append(
            "the core repulsion (ZBL) is not in these files: in LAMMPS it is LAMMPS's zbl overlaid on hdnnp "
            "(pair_style hybrid/overlay, as hdnnp.lammps writes it); n2p2's own programs lack it"
        )
    return caveats


def hdnnp_lines(model: BPNN, directory, length_unit: float, energy_unit: float) -> str:
    """The LAMMPS lines that run the written files in n2p2's `pair_style hdnnp` (the ML-HDNNP
    package, or n2p2's pair style loaded as a plugin), units metal: cflength and cfenergy turn
    LAMMPS's Å and eV into the files' units; with a core repulsion, LAMMPS's zbl overlaid."""

    cutoff = model.cutoff * (1 + 1e-12)  # never below n2p2's own largest cutoff after its unit conversion (it refuses that)
    style = (
        f"hdnnp {cutoff!r} dir {Path(directory).resolve()} showew no showewsum 0 resetew no maxew 1000 "
        f"cflength {1.0 / length_unit!r} cfenergy {1.0 / energy_unit!r}"
    )
    lines = [
        "# n2p2's pair_style hdnnp (LAMMPS built with ML-HDNNP, or `plugin load` n2p2's pair style); units metal",
        "# LAMMPS atom types 1…N → the model's elements; edit for your own type order",
        *[f"# note: {caveat}" for caveat in short_range_caveats(model)],
    ]
    if model.core_repulsion is None:
        return "\n".join([*lines, f"pair_style {style}", f"pair_coeff * * {' '.join(model.elements)}", ""])
    styles, coefficients = zbl_styles(model)
    return "\n".join(
        [
            *lines,
            f"pair_style hybrid/overlay {style} {' '.join(styles)}",
            f"pair_coeff * * hdnnp {' '.join(model.elements)}",
            *coefficients,
            "",
        ]
    )


def _check_expressible(model) -> None:
    """Refuse, naming every reason, a model n2p2's files cannot hold."""
    if not isinstance(model, BPNN):
        where = "pair potentials go to LAMMPS with export-lammps" if model.kind in ("lj", "morse", "pair") else "n2p2 has no such model"
        raise ValueError(
            f"n2p2 files hold Behler–Parrinello networks on symmetry functions (kind bpnn), not a {model.kind} model ({where})"
        )
    descriptor, elements = model.descriptor, model.elements
    problems = [] if isinstance(descriptor, SymmetryFunctions) else [f"descriptor {descriptor.kind!r} (n2p2 has symmetry functions only)"]
    problems += [f"activation {a!r} ({e})" for e in elements for a in model.activations[e] if a not in LETTER_OF]
    if len({tuple(a) for a in model.activations.values()}) > 1:
        problems.append("different activations per element")
    if len({len(h) for h in model.hidden.values()}) > 1:
        problems.append("different numbers of hidden layers per element")
    if problems:
        raise ValueError(f"this model cannot be expressed in n2p2: {', '.join(problems)}")
    if [atomic_numbers[e] for e in elements] != sorted(atomic_numbers[e] for e in elements):
        raise ValueError(f"elements {elements} must be in order of atomic number for n2p2 export")


SCALING_KEYWORDS = {
    "none": [],
    "center": ["center_symmetry_functions"],
    "scale": ["scale_symmetry_functions"],
    "scalecenter": ["scale_symmetry_functions", "center_symmetry_functions"],
    "scalesigma": ["scale_symmetry_functions_sigma"],
}


def _input_nn(model: BPNN, length_unit: float, energy_unit: float) -> tuple[list[str], dict[str, list[int]]]:
    """input.nn's lines, and per element the order of its functions in n2p2's sorting."""
    descriptor, elements, scaling = model.descriptor, model.elements, model.scaling
    index = {e: n for n, e in enumerate(elements)}
    lines = [
        "# n2p2 potential written by forcefit",
        f"# file units: 1 length unit = {length_unit!r} Å, 1 energy unit = {energy_unit!r} eV",
        *[f"# {line}" for line in short_range_caveats(model)],
        f"number_of_elements {len(elements)}",
        "elements " + " ".join(elements),
        f"cutoff_type {CUTOFF_TYPES[descriptor.cutoff_type]} {descriptor.cutoff_alpha!r}",
        *SCALING_KEYWORDS[scaling.mode],
        f"scale_min_short {scaling.s_min!r}",
        f"scale_max_short {scaling.s_max!r}",
        f"mean_energy {0.0!r}",
        f"conv_energy {energy_unit / float(model.energy_scale)!r}",
        f"conv_length {1.0!r}",
        f"global_hidden_layers_short {len(model.hidden[elements[0]])}",
        "global_nodes_short " + " ".join(str(n) for n in model.hidden[elements[0]]),
        "global_activation_short " + " ".join(LETTER_OF[a] for a in model.activations[elements[0]]),
    ]
    for e in elements:
        lines.append(f"atom_energy {e} {float(model.atom_reference[index[e]]) / energy_unit!r}")
        for n, count in enumerate(model.hidden[e], start=1):
            if count != model.hidden[elements[0]][n - 1]:
                lines.append(f"element_nodes_short {e} {n} {count}")
    orders = {}
    for e in elements:
        mine = [f for f in descriptor.functions if f.center == e]
        orders[e] = sorted(range(len(mine)), key=lambda k: _sort_key(mine[k], index))
        for f in (mine[k] for k in orders[e]):
            t = TYPE_OF_KIND[f.kind]
            eta, rc, rs = f.eta * length_unit**2, f.rc / length_unit, f.rs / length_unit
            if f.kind == "radial":
                lines.append(f"symfunction_short {e} {t} {f.neighbors[0]} {eta!r} {rs!r} {rc!r}")
            else:
                a, b = sorted(f.neighbors, key=lambda x: index[x])
                lines.append(f"symfunction_short {e} {t} {a} {b} {eta!r} {f.lam!r} {f.zeta!r} {rc!r} {rs!r}")
    return lines, orders


def _weights(network, order: list[int]) -> list[str]:
    """One element's weights.NNN.data lines (its first layer's inputs in n2p2's function order)."""
    linears = [m for m in network if isinstance(m, torch.nn.Linear)]
    out, counter = ["# value type index layer_start neuron_start layer_end neuron_end"], 0
    for layer, linear in enumerate(linears):
        weight = linear.weight.detach().double()
        if layer == 0:
            weight = weight[:, order]
        for n_s in range(weight.shape[1]):
            for n_e in range(weight.shape[0]):
                counter += 1
                out.append(f"{float(weight[n_e, n_s]):.17E} a {counter} {layer} {n_s + 1} {layer + 1} {n_e + 1}")
        for n_e, bias in enumerate(linear.bias.detach().double()):
            counter += 1
            out.append(f"{float(bias):.17E} b {counter} {layer + 1} {n_e + 1}")
    return out


def save_potential(model: BPNN, directory, *, length_unit: float = 1.0, energy_unit: float = 1.0) -> None:
    """Write input.nn, scaling.data and weights.NNN.data (file units: `length_unit`
    Å and `energy_unit` eV), and hdnnp.lammps, the lines that run them in LAMMPS. n2p2 then
    computes forcefit's energy Σ_i E_i (the per-element e_ref as `atom_energy`) and forces. The
    loss offset b, the reference data's zero, is not part of the potential and is not written."""
    _check_expressible(model)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)  # only once the model is known to fit n2p2's files
    lines, orders = _input_nn(model, length_unit, energy_unit)
    (directory / "input.nn").write_text("\n".join(lines) + "\n")
    index = {e: n for n, e in enumerate(model.elements)}
    rows = ["# element function min max mean sigma (written by forcefit)"]
    for e in model.elements:
        for position, k in enumerate(orders[e], start=1):
            rows.append(f"{index[e] + 1} {position} " + " ".join(f"{v:.17E}" for v in _n2p2_statistics(model.scaling, index[e], k)))
    (directory / "scaling.data").write_text("\n".join(rows) + "\n")
    for e, network in zip(model.elements, model.networks):
        (directory / f"weights.{atomic_numbers[e]:03d}.data").write_text("\n".join(_weights(network, orders[e])) + "\n")
    (directory / "hdnnp.lammps").write_text(hdnnp_lines(model, directory, length_unit, energy_unit))
