"""One Kohn-Sham diagonalisation in a periodic cell (Gamma point) from auxiliary-basis coefficients.

From rho~ = sum_P c_P phi_P (lattice-summed) on the cell's uniform grid: the Hartree potential by FFT
(G = 0 omitted: neutralising background, as in PySCF's FFTDF), v_xc of rho~ and its gradient, the
matrix of v_H + v_xc on the same grid, F = T + V_pp + V_H + V_xc at Gamma, one solution of
F C = S C eps, aufbau occupation (closed shell), and the energies per cell (Hartree), defined as in
:func:`rhocast.pbc.references.energy_components` so that they compare directly with the reference.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
from ase import Atoms

from rhocast.basis import AuxiliaryBasis
from rhocast.pbc.grid import density_from_coefficients, hartree, potential_matrix
from rhocast.pbc.references import core_hamiltonian, energy_components
from rhocast.xc import xc_type_and_derivative


def kohn_sham_step_cell(atoms: Atoms, cell, basis: AuxiliaryBasis, coefficients: np.ndarray, xc: str) -> dict:
    """One KS step in the pyscf.pbc ``cell`` of ``atoms`` from ``coefficients`` (canonical order, already
    checked and renormalised by :func:`rhocast.kohn_sham.kohn_sham_step`, which calls this and builds the
    :class:`rhocast.kohn_sham.KohnShamResult` from the returned fields: orbitals, ``dm``, band energy,
    nuclear repulsion (Ewald), input and output energies per cell, Hartree)."""
    from pyscf import dft as mol_dft

    weight = cell.vol / np.prod(cell.mesh)
    ni = mol_dft.numint.NumInt()
    xctype, deriv = xc_type_and_derivative(xc)
    rho = density_from_coefficients(atoms, basis, coefficients, cell.mesh, deriv)
    e_hartree_in, v_hartree = hartree(cell, rho[0])
    exc, vxc = ni.eval_xc_eff(xc, rho if deriv else rho[0], deriv=1, xctype=xctype)[:2]
    vxc = np.atleast_2d(vxc)
    exc_in = float(weight * (exc @ rho[0]))
    vrho_in = float(weight * np.sum(vxc * rho))
    wv = weight * vxc
    wv[0] += weight * v_hartree
    hcore = core_hamiltonian(cell)
    fock = hcore + potential_matrix(cell, wv)
    mo_energy, mo_coeff = scipy.linalg.eigh(fock, cell.pbc_intor("int1e_ovlp", hermi=1))
    n_occ = cell.nelectron // 2
    mo_occ = 2.0 * (np.arange(cell.nao) < n_occ)
    dm = (mo_coeff * mo_occ) @ mo_coeff.T
    band = float(mo_energy @ mo_occ)
    output = energy_components(cell, dm, xc, hcore)
    e_nuc = output.pop("nuclear_repulsion")
    return {"mo_energy": mo_energy, "mo_occ": mo_occ, "mo_coeff": mo_coeff, "dm": dm, "band_energy": band,
            "nuclear_repulsion": e_nuc, "input_energies": {"hartree": e_hartree_in, "xc": exc_in, "vxc_rho": vrho_in},
            "output_energies": output}
