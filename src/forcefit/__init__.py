"""forcefit: fit interatomic potentials to quantum reference data and run them."""

from forcefit.structures import Structure

__version__ = "0.1.0"


def __getattr__(name):
    # The calculator pulls in ASE's calculator machinery; import it on first use.
    if name == "Calculator":
        from forcefit.calculator import Calculator

        return Calculator
    raise AttributeError(f"module 'forcefit' has no attribute {name!r}")


__all__ = ["Structure", "Calculator", "__version__"]
