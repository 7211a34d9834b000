"""Potential files of other codes: n2p2/RuNNer directories (import and export) and LAMMPS
pair-style snippets. These need models, so they sit above `forcefit.models`; dataset
formats (extxyz, ASE databases, input.data) live in `forcefit.io`, below everything."""
