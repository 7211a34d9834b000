"""forcefit: fit interatomic potentials to quantum reference data and run them."""

from forcefit.structures import Structure
from forcefit.version import __version__


def __getattr__(name):
    # The calculator and the API pull in torch, ASE's calculators and the training stack: imported on first use.
    if name == "Calculator":
        from forcefit.calculator import Calculator

        return Calculator
    if name in ("train", "evaluate", "load", "TrainResult"):
        from forcefit import api

        return getattr(api, name)
    raise AttributeError(f"module 'forcefit' has no attribute {name!r}")


__all__ = ["Structure", "Calculator", "train", "evaluate", "load", "TrainResult", "__version__"]
