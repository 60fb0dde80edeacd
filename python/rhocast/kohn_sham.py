"""One Kohn-Sham diagonalisation from a density given by auxiliary-basis coefficients (METHOD.md section 7).

From rho~ = sum_P c_P phi_P: the Coulomb matrix J_{mu nu} = sum_P (mu nu|P) c_P (three-centre integrals),
the exchange-correlation potential of rho~ and its gradient on a DFT grid (processed in blocks, so
memory stays bounded), F = T + V_ne + J + V_xc, one solution of F C = S C eps, aufbau occupation,
and the energies. Atomic units (Hartree) throughout. With an ECP (def2 beyond Kr, :mod:`rhocast.ecp`)
V_ne includes it and every electron count is the valence count.

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
from rhocast.integrals import IntegralContext, nuclear_attraction, one_electron_energies
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


def _xc_on_grid(context, coefficients: np.ndarray, xc: str, level: int):
    """V_xc matrix, E_xc[rho~] and int v_xc rho~ of the fitted density (``coefficients`` in canonical
    order) on the grid of ``level``: rho~ and its gradient collocated by the compiled core
    (:meth:`IntegralContext.aux_density`), xc by PySCF's ``eval_xc_eff``, the matrix contracted block by
    block with the orbitals' screening (PySCF's sparse ``_dot_ao_ao``, as its ``nr_rks``)."""
    from pyscf import dft, lib

    numint = dft.numint
    mol = context.mol
    ni = numint.NumInt()
    xctype, deriv = xc_type_and_derivative(xc)
    grids = context.grids(level)
    rho_all = context.aux_density(grids.coords, coefficients, deriv)  # (1 or 4, n): rho (, d/dx, d/dy, d/dz)
    ao_loc = mol.ao_loc_nr()
    nbins = numint.NBINS * 2 - int(numint.NBINS * np.log(grids.cutoff * 1e2) / np.log(grids.cutoff))
    pair_mask = mol.get_overlap_cond() < -np.log(ni.cutoff)
    vxc_mat = np.zeros((mol.nao, mol.nao))
    exc_total = vrho_total = 0.0
    aow = None
    for ao, mask, weight, p0, p1 in context.orbital_blocks(level, deriv):
        rho = rho_all[:, p0:p1] if deriv else rho_all[0, p0:p1]
        exc, vxc = ni.eval_xc_eff(xc, rho, deriv=1, xctype=xctype)[:2]
        exc_total += weight @ (exc * rho_all[0, p0:p1])
        vrho_total += np.sum(weight * vxc * rho)
        wv = weight * vxc
        if deriv == 0:
            numint._dot_ao_ao_sparse(ao, ao, wv[0], nbins, mask, pair_mask, ao_loc, hermi=1, out=vxc_mat)
        else:
            wv[0] *= 0.5  # the matrix is symmetrised below: aow^T ao + ao^T aow
            aow = numint._scale_ao_sparse(ao, wv, mask, ao_loc, out=aow)
            numint._dot_ao_ao_sparse(ao[0], aow, None, nbins, mask, pair_mask, ao_loc, hermi=0, out=vxc_mat)
    if deriv:
        vxc_mat = lib.hermi_sum(vxc_mat)
    return vxc_mat, float(exc_total), float(vrho_total)


def _orbital_density(ao: np.ndarray, mo_coeff: np.ndarray, mo_occ: np.ndarray, deriv: int) -> np.ndarray:
    """rho = sum_i n_i psi_i^2 on a block of points ((n,) for ``deriv`` = 0) and, with ``deriv`` = 1, its
    gradient 2 sum_i n_i psi_i grad psi_i ((4, n)); ``ao``: PySCF's ``eval_ao`` block. One product with
    the occupied orbitals per component, on the (nao, n) layout that ``eval_ao`` stores: half the time
    of PySCF's ``eval_rho2`` on a QM9 molecule, and 20 % below a stacked ``ao @ C`` on the transposed
    view."""
    occupied = mo_occ > 0
    coeff_t, occ = np.ascontiguousarray(mo_coeff[:, occupied].T), mo_occ[occupied]
    ao_t = ao.reshape(-1, *ao.shape[-2:]).transpose(0, 2, 1)  # (1 + 3 deriv, nao, n), contiguous
    psi = np.matmul(coeff_t, ao_t)  # (1 + 3 deriv, n_occ, n)
    weighted = occ[:, None] * psi[0]
    rho = np.einsum("ig,xig->xg", weighted, psi)
    if not deriv:
        return rho[0]
    rho[1:] *= 2
    return rho


def _output_xc(context, mo_coeff: np.ndarray, mo_occ: np.ndarray, xc: str, level: int) -> float:
    """E_xc of the output density sum_i n_i |psi_i|^2 (``mo_occ`` (nao,), or (2, nao) per spin:
    spin-polarised) on the grid of ``level`` (:meth:`IntegralContext.orbital_blocks`): the same number as
    PySCF's ``nr_rks`` / ``nr_uks`` of the density matrix, without its potential matrix."""
    from pyscf import dft

    ni = dft.numint.NumInt()
    xctype, deriv = xc_type_and_derivative(xc)
    exc_total = 0.0
    for ao, _, weight, _, _ in context.orbital_blocks(level, deriv):
        if mo_occ.ndim == 1:
            rho = _orbital_density(ao, mo_coeff, mo_occ, deriv)
            exc = ni.eval_xc_eff(xc, rho, deriv=0, xctype=xctype)[0]
            density = rho if deriv == 0 else rho[0]
        else:
            rho = np.array([_orbital_density(ao, mo_coeff, o, deriv) for o in mo_occ])
            exc = ni.eval_xc_eff(xc, rho, deriv=0, xctype=xctype, spin=1)[0]
            density = rho[0] + rho[1] if deriv == 0 else rho[0][0] + rho[1][0]
        exc_total += weight @ (exc * density)
    return float(exc_total)


def _output_hartree(context, dm: np.ndarray, fitted_hartree: bool) -> float:
    """Hartree energy of the output density matrix ``dm`` ((nao, nao), or (2, nao, nao) spin resolved).
    Exact: 0.5 tr(D J[D]) with PySCF's four-centre J. ``fitted_hartree``: the Hartree energy of the
    robust Coulomb fit of ``dm``, 0.5 b^T J^-1 b with b = (P|mu nu) D from the context's kept three-centre
    integrals (a lower bound whose error is second order in the fitting error), no four-centre integrals."""
    from pyscf import scf

    mol = context.mol
    dm_total = total_density_matrix(dm)
    if not fitted_hartree:
        mf = scf.RHF(mol)
        mf.max_memory = context.max_memory_mb
        return 0.5 * float(np.einsum("ij,ji->", mf.get_j(mol, dm_total), dm_total))
    from rhocast.density_fitting import projections

    b = projections(mol, context.auxmol, dm_total, "coulomb", context=context)[np.argsort(
        canonical_permutation(context.auxmol))]
    return 0.5 * float(b @ context.solve_metric(b))


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
                   output_grid_level: Optional[int] = None, max_memory_mb: Optional[float] = None,
                   context=None) -> KohnShamResult:
    """One KS diagonalisation from the density ``coefficients`` (canonical order) of ``atoms``.

    ``basis``, ``auxbasis``, ``xc``, ``grid_level`` (molecules), ``pseudo`` and ``ke_cutoff`` (cells)
    should be those of the reference (``step_options(dataset.settings)``); unset ones take the defaults
    of :class:`rhocast.references.ReferenceSettings`. Charge and spin default to ``atoms.info``.

    ``renormalize`` first corrects the input density to the exact electron count of the system with the
    smallest L2 change (:func:`rhocast.properties.with_electron_count`). A model's error in the count
    charges the molecule and shifts the whole potential: on QM9 molecules from a 50-molecule model,
    counts off by 0.5-3.5 electrons gave KS energies off by 100-3000 kcal/mol (20-270 once the s
    functions were merely rescaled).
    ``output_energies=False`` skips the energies of the output density (its Hartree energy and a second
    grid pass for its xc energy, which an SCF started from ``dm`` repeats anyway): ``output_energies`` is
    then empty (molecules; cells always compute them).
    ``fitted_hartree`` (molecules): the output density's Hartree energy from its robust Coulomb fit instead
    of four-centre integrals (:func:`_output_hartree`; def2-SVP/def2-universal-jkfit: 2.9e-5 Ha below
    the exact Hartree energy on water, tests/test_kohn_sham.py, 1.8-2.2e-4 Ha on 9-heavy-atom QM9
    molecules and (H2O)8, benchmarks/RESULTS.md; it saves the four-centre integrals, most of the
    exact path's time).
    ``output_grid_level`` (molecules): the grid level of the output density's xc energy (default: the
    step's ``grid_level``, the accurate number). A coarser level is an approximation that saves most of
    the second grid pass: level 1 against level 3 on (H2O)8 (PBE/def2-SVP) moved E_xc by 1.1e-4 Ha and
    took 1.4 s against 3.9 s (its own grid included); level 2 moved it by 6e-7 Ha but saved nothing
    (its grid build costs what the smaller pass saves).
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
    if output_grid_level is None:
        output_grid_level = grid_level
    elif isinstance(output_grid_level, bool) or output_grid_level not in range(10):
        raise ValueError(f"output_grid_level must be a PySCF grid level 0-9 (or None: grid_level "
                         f"{grid_level}), not {output_grid_level!r}")
    c0, s0 = charge_and_spin(atoms)
    if context is None:
        mol = to_pyscf_mol(atoms, basis, c0 if charge is None else charge, s0 if spin is None else spin)
        _, auxmol, coefficients = input_density(atoms, mol, auxbasis, coefficients, renormalize)
        context = IntegralContext(mol, auxmol, max_memory_mb)
    else:
        mol, auxmol = context.mol, context.auxmol
        coefficients = checked_coefficients(atoms, mol, auxbasis, auxmol, coefficients, renormalize)
    c_pyscf = from_canonical(auxmol, coefficients)

    j = contract_coefficients(mol, auxmol, coefficients, "coulomb", context=context)
    e_hartree_in = 0.5 * float(c_pyscf @ context.metric("coulomb") @ c_pyscf)
    vxc, exc_in, vrho_in = _xc_on_grid(context, coefficients, xc, grid_level)
    kinetic, nuclear = mol.intor_symmetric("int1e_kin"), nuclear_attraction(mol)  # the ECP included
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
        output = {**one_electron_energies(mol, dm_total, kinetic, nuclear),
                  "hartree": _output_hartree(context, dm, fitted_hartree),
                  "xc": _output_xc(context, mo_coeff, mo_occ, xc, output_grid_level)}
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
