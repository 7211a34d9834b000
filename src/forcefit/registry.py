"""Classes found by name: a model kind or a descriptor family registers its class under its
`kind`, so that configs and model files can name it (models/registry.py, descriptors/registry.py)."""

from __future__ import annotations


class Registry(dict):
    """{kind: class}, filled by the `register` class decorator."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(self, cls: type) -> type:
        if cls.kind in self and self[cls.kind] is not cls:
            raise ValueError(f"two {self.what} classes claim the kind {cls.kind!r}: {self[cls.kind].__name__} and {cls.__name__}")
        self[cls.kind] = cls
        return cls
