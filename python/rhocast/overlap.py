"""Overlap matrices of the auxiliary basis, block-sparse by atom pairs (compiled core).

S_PQ = <phi_P|phi_Q> in canonical order; periodic cells are lattice-summed over every image that
contributes. Blocks whose elements are all below ``tol`` are dropped, so memory grows linearly with
the number of atoms.
"""
from __future__ import annotations

from ase import Atoms
from ase.units import Bohr

from rhocast.basis import AuxiliaryBasis


def overlap_matrix(atoms: Atoms, basis: AuxiliaryBasis, tol: float = 1e-10):
    """Block-sparse overlap matrix (``_core.BlockSparseMatrix``) of ``basis`` on ``atoms``.

    Positions and cell are in Angstrom (converted to Bohr). ``atoms.pbc`` must be all True (a 3D
    cell, lattice-summed) or all False (a molecule).
    """
    from rhocast import _core

    if atoms.pbc.any() and not atoms.pbc.all():
        raise ValueError("overlap_matrix supports molecules and 3D-periodic cells, not partial pbc")
    cell = atoms.cell.array / Bohr if atoms.pbc.all() else None
    return _core.overlap_matrix(basis.to_core(), [int(z) for z in atoms.numbers], atoms.positions / Bohr,
                                cell, tol)
