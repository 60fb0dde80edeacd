"""rhocast: machine-learned electron densities on an atom-centred auxiliary basis.

Public names are imported lazily (PEP 562) so that ``import rhocast`` and the command line stay fast
and the pure-Python parts (references, Kohn-Sham step) work before the compiled core is built.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "AuxiliaryBasis": "rhocast.basis",
    "BlockSparseMatrix": "rhocast.sparse",
    "compute_references": "rhocast.references",
    "Dataset": "rhocast.dataset",
    "neighbor_list": "rhocast.neighbors",
    "LambdaSoap": "rhocast.descriptors",
    "overlap_matrix": "rhocast.overlap",
    "DensityModel": "rhocast.model",
    "kohn_sham_step": "rhocast.kohn_sham",
    "scf_guess": "rhocast.scf_guess",
    "pretrained": "rhocast.pretrained_models",
}
_SUBMODULES = {"sources", "accuracy", "basis", "density_fitting", "properties"}

__all__ = sorted(_LAZY) + sorted(_SUBMODULES)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"rhocast.{name}")
    raise AttributeError(f"module 'rhocast' has no attribute {name!r}")
