"""One Kohn-Sham diagonalisation from a density given by auxiliary-basis coefficients (METHOD.md section 7).

From rho~ = sum_P c_P phi_P: the Coulomb matrix J_{mu nu} = sum_P (mu nu|P) c_P (three-centre integrals),
the exchange-correlation potential of rho~ and its gradient on a DFT grid (processed in blocks, so
memory stays bounded), F = T + V_ne + J + V_xc, one solution of F C = S C eps, aufbau occupation,
and the energies. Atomic units (Hartree) throughout.

Open shells: a model predicts only the total density, so the potential is spin-unpolarised; alpha
and beta electrons occupy the same orbitals (n_alpha and n_beta lowest). The energy of the output
density is then evaluated spin-polarised by PySCF (UKS), which is the physically meaningful number.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import scipy.linalg
from ase import Atoms

from rhocast.basis import AuxiliaryBasis, canonical_permutation, from_canonical
from rhocast.density_fitting import contract_coefficients, total_density_matrix
from rhocast.integrals import GRID_BLOCK, IntegralContext, one_electron_energies
from rhocast.properties import with_electron_count
from rhocast.structures import charge_and_spin, to_pyscf_mol
from rhocast.xc import xc_type_and_derivative


@dataclass
class KohnShamResult:
    """Result of :func:`kohn_sham_step` (energies in Hartree).

    input_energies: hartree, xc, vxc_rho (= int v_xc[rho~] rho~) of the input density rho~.
    output_energies: kinetic, electron_nuclear, hartree, xc, total (the KS energy) of the output
    density matrix ``dm``.
    """

    mo_energy: np.ndarray
    mo_occ: np.ndarray
    mo_coeff: np.ndarray
    dm: np.ndarray  # (nao, nao) closed shell, (2, nao, nao) open shell
    band_energy: float
    nuclear_repulsion: float
    harris_foulkes: float
    input_energies: dict = field(default_factory=dict)
    output_energies: dict = field(default_factory=dict)
    n_atoms: int = 0

    @property
    def total_energy(self) -> float:
        """The Kohn-Sham energy of the output density: the accurate (second-order) energy."""
        return self.output_energies["total"]

    def summary(self) -> str:
        lines = ["one Kohn-Sham step (Hartree)",
                 f"  KS energy of the output density : {self.total_energy:.8f}",
                 f"  Harris-Foulkes energy          : {self.harris_foulkes:.8f}",
                 f"  band energy                    : {self.band_energy:.8f}"]
        lines += [f"  output {k:<24}: {v:.8f}" for k, v in self.output_energies.items() if k != "total"]
        lines += [f"  input  {k:<24}: {v:.8f}" for k, v in self.input_energies.items()]
        return "\n".join(lines)


def _xc_on_grid(context, coefficients: np.ndarray, xc: str, grids):
    """V_xc matrix, E_xc[rho~] and int v_xc rho~ from the fitted density (``coefficients`` in canonical
    order), block by block: auxiliary functions collocated by the compiled core (:meth:`aux_functions`),
    xc by PySCF's ``eval_xc_eff``."""
    from pyscf import dft

    mol, auxmol = context.mol, context.auxmol
    ni = dft.numint.NumInt()
    xctype, deriv = xc_type_and_derivative(xc)
    nao = mol.nao
    vxc_mat = np.zeros((nao, nao))
    exc_total = vrho_total = 0.0
    # Size blocks for the orbitals *and* the (many more) auxiliary functions evaluated on each block,
    # with a factor 2 for temporaries; PySCF's own sizing counts the orbitals only.
    comp = 1 + 3 * deriv
    per_point = 8 * comp * (nao + auxmol.nao) * 2
    blksize = context.block_size(per_point, fraction=1.0, multiple=dft.gen_grid.BLKSIZE, limit=GRID_BLOCK)
    for ao, mask, weight, coords in ni.block_loop(mol, grids, nao, deriv, blksize=blksize):
        rho_arr = context.aux_functions(coords, deriv) @ coefficients  # (1 or 4, n): rho (, d/dx, d/dy, d/dz)
        rho = rho_arr[0]
        if deriv == 0:
            ao = ao[None]
            rho_arr = rho
        exc, vxc = ni.eval_xc_eff(xc, rho_arr, deriv=1, xctype=xctype)[:2]
        vxc = np.atleast_2d(vxc)
        exc_total += weight @ (exc * rho)
        vrho_total += np.sum(weight * vxc * np.atleast_2d(rho_arr))
        vxc_mat += potential_matrix_block(ao, weight * vxc)
    return vxc_mat, float(exc_total), float(vrho_total)


def _output_hartree_xc(context, dm: np.ndarray, xc: str, grids, fitted_hartree: bool) -> dict:
    """Hartree and xc energies of the output density matrix ``dm`` ((nao, nao), or (2, nao, nao) spin
    resolved: xc spin-polarised). Exact: PySCF's Fock build (four-centre J). ``fitted_hartree``: the
    Hartree energy of the robust Coulomb fit of ``dm``, 0.5 b^T J^-1 b with b = (P|mu nu) D from the
    context's kept three-centre integrals (a lower bound whose error is second order in the fitting
    error), and the xc energy on the grid only (PySCF's nr_rks / nr_uks), no four-centre integrals."""
    from pyscf import dft

    mol = context.mol
    if not fitted_hartree:
        mf = dft.RKS(mol) if dm.ndim == 2 else dft.UKS(mol)
        mf.xc, mf.grids, mf.max_memory = xc, grids, context.max_memory_mb
        veff = mf.get_veff(mol, dm)
        return {"hartree": float(veff.ecoul), "xc": float(veff.exc)}
    from rhocast.density_fitting import projections

    dm_total = total_density_matrix(dm)
    b = projections(mol, context.auxmol, dm_total, "coulomb", context=context)[np.argsort(
        canonical_permutation(context.auxmol))]
    ni = dft.numint.NumInt()
    nr = ni.nr_rks if dm.ndim == 2 else ni.nr_uks
    exc = nr(mol, grids, xc, dm, max_memory=context.max_memory_mb)[1]
    return {"hartree": 0.5 * float(b @ context.solve_metric(b)), "xc": float(exc)}


def potential_matrix_block(ao: np.ndarray, wv: np.ndarray) -> np.ndarray:
    """sum_g wv_0 chi_mu chi_nu + wv_x d_x(chi_mu chi_nu) over a block of points.

    ao: (1 or 4, n_points, nao) values (and gradients); wv: (1 or 4, n_points), weight times potential
    (for a GGA, PySCF's ``eval_xc_eff`` convention: wv_x = weight x 2 v_sigma d_x rho).
    """
    wv = np.array(wv, dtype=float)
    wv[0] *= 0.5  # the matrix is symmetrised below: aow^T ao + ao^T aow
    aow = np.einsum("xgi,xg->gi", ao[:len(wv)], wv)
    half = ao[0].T @ aow
    return half + half.T


def input_density(atoms: Atoms, system, auxbasis, coefficients: np.ndarray, renormalize: bool):
    """The AuxiliaryBasis, its auxiliary molecule (or cell) of ``system`` and the checked input coefficients
    (canonical order), corrected to ``system.nelectron`` when ``renormalize``."""
    basis = AuxiliaryBasis(auxbasis, set(atoms.numbers))
    auxmol = basis.make_auxmol(system)
    return basis, auxmol, checked_coefficients(atoms, system, basis, auxmol, coefficients, renormalize)


def checked_coefficients(atoms: Atoms, system, basis, auxmol, coefficients: np.ndarray,
                         renormalize: bool) -> np.ndarray:
    """``coefficients`` (canonical order) checked against ``auxmol`` and, when ``renormalize``, corrected
    to ``system.nelectron``; ``basis`` is an AuxiliaryBasis or its spec."""
    coefficients = np.asarray(coefficients, dtype=float)
    if coefficients.shape != (auxmol.nao,):
        raise ValueError(f"{coefficients.size} coefficients for an auxiliary basis of {auxmol.nao} functions")
    if renormalize:
        if not isinstance(basis, AuxiliaryBasis):
            basis = AuxiliaryBasis(basis, set(atoms.numbers))
        coefficients = with_electron_count(coefficients, basis, atoms, system.nelectron)
    return coefficients


STEP_OPTIONS = ("basis", "auxbasis", "xc", "grid_level", "pseudo", "ke_cutoff")


def step_options(settings: dict, reference: Optional[dict] = None) -> dict:
    """The keyword arguments of :func:`kohn_sham_step` found in a dataset's or model's ``settings``.

    ``reference``: the settings of the references the energies will be compared with. The step then
    runs on their grid (grid level, plane-wave cutoff: a comparison at another grid measures the grid,
    not the density), and a different method (orbital or auxiliary basis, functional, pseudopotential)
    is an error that names it.
    """
    options = {k: settings[k] for k in STEP_OPTIONS if settings.get(k) is not None}
    if reference is None:
        return options
    theirs = {k: reference[k] for k in STEP_OPTIONS if reference.get(k) is not None}
    differ = [k for k in ("basis", "auxbasis", "xc", "pseudo") if options.get(k) != theirs.get(k)]
    if differ:
        raise ValueError("the references were computed with another method: "
                         + ", ".join(f"{k} {theirs.get(k)!r} (model: {options.get(k)!r})" for k in differ))
    return {**options, **{k: theirs[k] for k in ("grid_level", "ke_cutoff") if k in theirs}}


def kohn_sham_step(atoms: Atoms, coefficients: np.ndarray, *, basis: Optional[str] = None,
                   auxbasis: Optional[str] = None, xc: str = "pbe", charge: Optional[int] = None,
                   spin: Optional[int] = None, grid_level: Optional[int] = None, pseudo: Optional[str] = None,
                   ke_cutoff: Optional[float] = None, renormalize: bool = True,
                   output_energies: bool = True, fitted_hartree: bool = False,
                   max_memory_mb: Optional[float] = None, context=None) -> KohnShamResult:
    """One KS diagonalisation from the density ``coefficients`` (canonical order) of ``atoms``.

    ``basis``, ``auxbasis``, ``xc``, ``grid_level`` (molecules), ``pseudo`` and ``ke_cutoff`` (cells)
    should be those of the reference (``step_options(dataset.settings)``); unset ones take the defaults
    of :class:`rhocast.references.ReferenceSettings`. Charge and spin default to ``atoms.info``.

    ``renormalize`` first corrects the input density to the exact electron count of the system with the
    smallest L2 change (:func:`rhocast.properties.with_electron_count`). A model's error in the count
    charges the molecule and shifts the whole potential: on QM9 molecules from a 50-molecule model,
    counts off by 0.5-3.5 electrons gave KS energies off by 100-3000 kcal/mol (20-270 once the s
    functions were merely rescaled).
    ``output_energies=False`` skips the energies of the output density (a Fock build of its own, which
    an SCF started from ``dm`` repeats anyway): ``output_energies`` is then empty (molecules; cells always
    compute them).
    ``fitted_hartree`` (molecules): the output density's Hartree energy from its robust Coulomb fit instead
    of a four-centre Fock build (:func:`_output_hartree_xc`; water, def2-SVP/def2-universal-jkfit: see
    tests/test_kohn_sham.py: 2.9e-5 Ha below the exact Hartree energy).
    ``context``: the :class:`rhocast.integrals.IntegralContext` of this molecule and auxiliary basis
    (its three-centre integrals, metric and grids are reused and kept; one is built when None, with
    ``max_memory_mb``, default ``mol.max_memory``).
    Periodic cells: the step itself is :func:`rhocast.pbc.kohn_sham.kohn_sham_step_cell` (closed shell,
    Gamma point).
    """
    from rhocast.references import ReferenceSettings

    periodic = bool(atoms.pbc.any())
    opts = ReferenceSettings(xc=xc, basis=basis, auxbasis=auxbasis, grid_level=grid_level, pseudo=pseudo,
                             ke_cutoff=ke_cutoff).resolved(periodic)
    if periodic:
        from rhocast.pbc.grid import to_pyscf_cell
        from rhocast.pbc.kohn_sham import kohn_sham_step_cell

        cell = to_pyscf_cell(atoms, opts.basis, opts.pseudo, opts.ke_cutoff, charge=charge, spin=0)
        cell_basis, _, coefficients = input_density(atoms, cell, opts.auxbasis, coefficients, renormalize)
        return _result(atoms, **kohn_sham_step_cell(atoms, cell, cell_basis, coefficients, opts.xc))
    basis, auxbasis, grid_level = opts.basis, opts.auxbasis, opts.grid_level
    c0, s0 = charge_and_spin(atoms)
    if context is None:
        mol = to_pyscf_mol(atoms, basis, c0 if charge is None else charge, s0 if spin is None else spin)
        _, auxmol, coefficients = input_density(atoms, mol, auxbasis, coefficients, renormalize)
        context = IntegralContext(mol, auxmol, max_memory_mb)
    else:
        mol, auxmol = context.mol, context.auxmol
        coefficients = checked_coefficients(atoms, mol, auxbasis, auxmol, coefficients, renormalize)
    c_pyscf = from_canonical(auxmol, coefficients)

    grids = context.grids(grid_level)
    j = contract_coefficients(mol, auxmol, coefficients, "coulomb", context=context)
    e_hartree_in = 0.5 * float(c_pyscf @ context.metric("coulomb") @ c_pyscf)
    vxc, exc_in, vrho_in = _xc_on_grid(context, coefficients, xc, grids)
    kinetic, nuclear = mol.intor_symmetric("int1e_kin"), mol.intor_symmetric("int1e_nuc")
    fock = kinetic + nuclear + j + vxc
    s = mol.intor_symmetric("int1e_ovlp")
    mo_energy, mo_coeff = scipy.linalg.eigh(fock, s)
    n_alpha, n_beta = mol.nelec
    occ_alpha = (np.arange(mol.nao) < n_alpha).astype(float)
    occ_beta = (np.arange(mol.nao) < n_beta).astype(float)
    band = float(mo_energy @ (occ_alpha + occ_beta))
    if mol.spin == 0:
        mo_occ = occ_alpha + occ_beta
        dm = (mo_coeff * mo_occ) @ mo_coeff.T
    else:
        mo_occ = np.array([occ_alpha, occ_beta])
        dm = np.array([(mo_coeff * o) @ mo_coeff.T for o in mo_occ])
    e_nuc = float(mol.energy_nuc())
    output = {}
    if output_energies:
        dm_total = total_density_matrix(dm)
        output = {**one_electron_energies(mol, dm_total, kinetic, nuclear), **_output_hartree_xc(context, dm, xc, grids, fitted_hartree)}
        output["total"] = sum(output.values()) + e_nuc
    return _result(atoms, mo_energy=mo_energy, mo_occ=mo_occ, mo_coeff=mo_coeff, dm=dm, band_energy=band,
                   nuclear_repulsion=e_nuc, input_energies={"hartree": e_hartree_in, "xc": exc_in, "vxc_rho": vrho_in},
                   output_energies=output)


def _result(atoms: Atoms, *, band_energy: float, nuclear_repulsion: float, input_energies: dict,
            **fields) -> KohnShamResult:
    """The KohnShamResult of a molecule's or a cell's step, with the one Harris-Foulkes formula
    E_HF = sum_i n_i eps_i - E_H[rho~] - int v_xc[rho~] rho~ + E_xc[rho~] + E_nn (Hartree)."""
    harris = (band_energy - input_energies["hartree"] - input_energies["vxc_rho"] + input_energies["xc"]
              + nuclear_repulsion)
    return KohnShamResult(band_energy=band_energy, nuclear_repulsion=nuclear_repulsion, harris_foulkes=float(harris),
                          input_energies=input_energies, n_atoms=len(atoms), **fields)
