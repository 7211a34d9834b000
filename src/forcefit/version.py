"""forcefit's version: one source for the package, its metadata and its model files."""

__version__ = "0.1.0"
