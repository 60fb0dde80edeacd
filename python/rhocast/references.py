"""Reference densities: DFT with PySCF and the density fit onto the auxiliary basis (METHOD.md section 2).

``compute_references`` is resumable: each finished structure is committed atomically to the output
file (see :mod:`rhocast.dataset`), and a rerun of the same command skips what is there.
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from rhocast import dataset as store
from rhocast.basis import default_auxbasis
from rhocast.density_fitting import fit_density, total_density_matrix
from rhocast.integrals import METRICS
from rhocast.properties import electron_count
from rhocast.structures import (StructureError, StructureSource, charge_and_spin, check_basis_name, describe,
                                read_structures, structure_hash, to_pyscf_mol, validate_structure)


@dataclass(frozen=True)
class ReferenceSettings:
    """How references are computed; stored in the dataset and compared on append.

    None means "the default for the kind of structure" (:meth:`resolved`). Molecules: def2-svp, the
    JK-fit partner of the basis, Coulomb metric, a DFT grid of ``grid_level``. Periodic cells (Gamma
    point, :mod:`rhocast.pbc`): gth-dzvp with the GTH pseudopotential of the functional, the even-tempered
    basis ``etb:<basis>``, overlap metric (the Coulomb metric of a cell needs Ewald sums: not provided),
    the uniform grid of ``ke_cutoff`` (Hartree) and the SCF scheme ``pbc_scheme``.
    """

    xc: str = "pbe"
    basis: Optional[str] = None
    auxbasis: Optional[str] = None
    metric: Optional[str] = None
    grid_level: Optional[int] = None
    conv_tol: float = 1e-9
    max_cycle: int = 100
    density_fit_scf: bool = False
    constrain_electrons: bool = False
    pseudo: Optional[str] = None
    ke_cutoff: Optional[float] = None
    pbc_scheme: Optional[str] = None

    def resolved(self, periodic: bool = False) -> "ReferenceSettings":
        xc = self.xc.lower()
        if periodic:
            from rhocast.pbc.references import SCHEMES

            basis = self.basis or "gth-dzvp"
            metric = self.metric or "overlap"
            if metric != "overlap":
                raise ValueError(f"periodic cells are fitted in the overlap metric, not {metric!r}")
            if self.density_fit_scf:
                raise ValueError("for periodic cells choose the SCF scheme with pbc_scheme, not density_fit_scf")
            scheme = self.pbc_scheme or "multigrid"
            if scheme not in SCHEMES:
                raise ValueError(f"pbc_scheme must be one of {SCHEMES}, not {scheme!r}")
            return ReferenceSettings(**{**asdict(self), "xc": xc, "basis": basis, "metric": metric,
                                        "auxbasis": self.auxbasis or f"etb:{basis}", "grid_level": None,
                                        "pseudo": self.pseudo or (f"gth-{xc}" if basis.startswith("gth") else None),
                                        "ke_cutoff": float(self.ke_cutoff or 200.0), "pbc_scheme": scheme})
        for name in ("pseudo", "ke_cutoff", "pbc_scheme"):
            if getattr(self, name) is not None:
                raise ValueError(f"{name} applies to periodic cells only")
        metric = self.metric or "coulomb"
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
        basis = self.basis or "def2-svp"
        return ReferenceSettings(**{**asdict(self), "xc": xc, "basis": basis, "metric": metric,
                                    "auxbasis": self.auxbasis or default_auxbasis(basis),
                                    "grid_level": 3 if self.grid_level is None else self.grid_level})

    def as_dict(self) -> dict:
        """The stored form: fields that do not apply (None) are left out."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def make_scf(atoms, settings: ReferenceSettings):
    """The PySCF RKS (spin 0) or UKS object of a molecule, set up but not run."""
    from pyscf import dft

    mol = to_pyscf_mol(atoms, settings.basis)
    mf = dft.RKS(mol) if mol.spin == 0 else dft.UKS(mol)
    mf.xc = settings.xc
    mf.grids.level = settings.grid_level
    mf.conv_tol = settings.conv_tol
    mf.max_cycle = settings.max_cycle
    if settings.density_fit_scf:
        mf = mf.density_fit(auxbasis=settings.auxbasis)
    return mf


def run_scf(atoms, settings: ReferenceSettings, guess_model=None):
    """Converged (or not) PySCF RKS/UKS of a molecule or Gamma-point RKS of a cell; returns the
    mean-field object and its cycle count.

    ``guess_model`` (a fitted :class:`rhocast.DensityModel`, molecules only): the SCF starts from
    :func:`rhocast.scf_guess.scf_guess` of its prediction instead of PySCF's minao guess. The converged
    state is the same; only the number of cycles changes.
    """
    if atoms.pbc.any():
        from rhocast.pbc.references import make_scf as make_cell_scf

        mf = make_cell_scf(atoms, settings)
    else:
        mf = make_scf(atoms, settings)
    dm0 = None
    if guess_model is not None:
        from rhocast.scf_guess import scf_guess

        dm0 = scf_guess(mf, guess_model)
    cycles = []
    mf.callback = lambda env: cycles.append(env["cycle"])
    mf.kernel(dm0=dm0)
    return mf, len(cycles)


def energy_components(mf) -> dict[str, float]:
    """SCF total energy and its components (Hartree)."""
    from rhocast.integrals import one_electron_energies

    e = {"total": float(mf.e_tot), "nuclear_repulsion": float(mf.mol.energy_nuc()),
         **one_electron_energies(mf.mol, total_density_matrix(mf.make_rdm1()))}
    e["hartree"] = float(mf.scf_summary["coul"])
    e["xc"] = float(mf.scf_summary["exc"])
    return e


def fitting_floor(mf, auxmol, coefficients: np.ndarray, context=None) -> dict[str, float]:
    """Error of the fitted density against the SCF density on the SCF's DFT grid.

    relative_l2 = 100 ||rho_fit - rho_scf|| / ||rho_scf||, nmae = 100 int |rho_fit - rho_scf| / N_e
    (both percent), and the fitted electron count q^T c. The fitted density is collocated by ``context``
    (an :class:`rhocast.integrals.IntegralContext` of ``mf.mol`` and ``auxmol``; built when None), in
    blocks of its size rule.
    """
    from pyscf.dft import numint

    from rhocast.integrals import GRID_BLOCK, IntegralContext

    dm = mf.make_rdm1()
    dm_total = total_density_matrix(dm)
    context = context if context is not None else IntegralContext(mf.mol, auxmol)
    grids = context.grids(mf.grids.level, mf.grids)
    block = context.block_size(8 * mf.mol.nao * 2, fraction=0.5, multiple=64, limit=GRID_BLOCK)
    sq_err = sq_ref = abs_err = 0.0
    for p0 in range(0, grids.weights.size, block):
        coords, w = grids.coords[p0:p0 + block], grids.weights[p0:p0 + block]
        rho = numint.eval_rho(mf.mol, numint.eval_ao(mf.mol, coords), dm_total)
        diff = context.aux_density(coords, coefficients)[0] - rho
        sq_err += w @ diff**2
        sq_ref += w @ rho**2
        abs_err += w @ np.abs(diff)
    return {"relative_l2": 100 * float(np.sqrt(sq_err / sq_ref)),
            "nmae": 100 * float(abs_err / mf.mol.nelectron),
            "n_electrons_fit": electron_count(coefficients, context.auxbasis, context.numbers)}


def reference_record(atoms, settings: ReferenceSettings, guess_model=None) -> dict:
    """Everything stored for one structure: SCF, fit, floor (settings must be resolved); the SCF of a
    molecule starts from ``guess_model``'s density where given (molecules of its elements), else from minao.
    Cells are fitted by :func:`rhocast.pbc.references.reference_fit` (the data path runs one way: pbc
    never imports this module)."""
    periodic = bool(atoms.pbc.any())
    if periodic or (guess_model is not None and not set(atoms.numbers.tolist()) <= set(guess_model.species_)):
        guess_model = None  # cells, or an element the model has not seen: PySCF's own guess
    t0 = time.perf_counter()
    mf, iterations = run_scf(atoms, settings, guess_model)
    if periodic:
        from rhocast.pbc.references import reference_fit
    else:
        reference_fit = molecule_fit
    c, energies, floor = reference_fit(atoms, mf, settings)
    record = stored_record(atoms, mf, iterations, settings, c, energies, floor, time.perf_counter() - t0)
    if not periodic:
        record["guess"] = "minao" if guess_model is None else "model"
    return record


def molecule_fit(atoms, mf, settings: ReferenceSettings) -> tuple[np.ndarray, dict[str, float], dict[str, float]]:
    """The fitted coefficients, energies and fitting floor of a molecule's converged SCF ``mf``."""
    from rhocast.basis import AuxiliaryBasis
    from rhocast.integrals import IntegralContext

    context = IntegralContext.of(mf.mol, AuxiliaryBasis(settings.auxbasis, set(atoms.numbers)))
    dm = mf.make_rdm1()
    dm_total = total_density_matrix(dm)
    n_el = mf.mol.nelectron
    c = fit_density(mf.mol, context.auxmol, dm_total, settings.metric,
                    n_electrons=n_el if settings.constrain_electrons else None, context=context)
    return c, energy_components(mf), fitting_floor(mf, context.auxmol, c, context)


def stored_record(atoms, mf, iterations: int, settings: ReferenceSettings, coefficients: np.ndarray,
                  energies: dict, floor: dict, wall_time: float) -> dict:
    """The fields a dataset stores for one structure (molecule or cell) after its SCF and fit."""
    charge, spin = charge_and_spin(atoms)
    return {"atoms": atoms, "hash": structure_hash(atoms), "charge": charge, "spin": spin,
            "converged": bool(mf.converged),
            "reason": "" if mf.converged else f"SCF not converged in {settings.max_cycle} cycles",
            "iterations": iterations, "n_electrons": mf.mol.nelectron,  # mf.mol is the cell for cells
            "coefficients": coefficients, "metric": settings.metric, "energies": energies, "floor": floor,
            "wall_time": wall_time, "guess": "minao"}


def _worker_init(threads: int) -> None:
    from pyscf import lib

    lib.num_threads(threads)


@functools.lru_cache(maxsize=1)
def _load_guess_model(path: Optional[str]):
    if path is None:
        return None
    from rhocast.pretrained_models import load_model

    return load_model(path)


def _worker(task):
    """(index, record, error, traceback) of one structure; a failure is reported, the others go on."""
    index, atoms, settings, guess_model = task
    try:
        return index, reference_record(atoms, settings, _load_guess_model(guess_model)), None, None
    except Exception as err:  # noqa: BLE001 - any failure of one SCF must not stop the run
        import traceback

        return index, None, f"{describe(atoms, index)}: {type(err).__name__}: {err}", traceback.format_exc()


@dataclass
class ReferenceSummary:
    """What a run did; ``failed`` maps input index -> reason (nothing was written for those)."""

    output: str
    n_input: int
    computed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    not_converged: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    wall_time: float = 0.0
    floors: list = field(default_factory=list)
    charge_spin: dict = field(default_factory=dict)  # (charge, 2S) -> number of structures
    error_log: Optional[str] = None  # tracebacks of the failed structures


    def __str__(self) -> str:
        lines = [f"references -> {self.output}",
                 f"  structures in input : {self.n_input}",
                 f"  computed now        : {len(self.computed)}  (not converged: {len(self.not_converged)})",
                 f"  already done        : {len(self.skipped)}",
                 f"  failed              : {len(self.failed)}"]
        if self.charge_spin:
            kinds = ", ".join(f"charge {c} spin {s}: {n}" for (c, s), n in sorted(self.charge_spin.items()))
            lines.append(f"  charge and 2S       : {kinds}")
        if self.floors:
            f = np.array(self.floors)
            lines.append(f"  fit floor (mean)    : relative L2 {f[:, 0].mean():.3f} %, NMAE {f[:, 1].mean():.3f} %")
        if self.computed:
            lines.append(f"  time                : {self.wall_time:.1f} s total, "
                         f"{self.wall_time / len(self.computed):.1f} s per structure")
        lines += [f"  ! {reason}" for reason in self.failed.values()]
        if self.error_log:
            lines.append(f"  tracebacks          : {self.error_log}")
        return "\n".join(lines)


def compute_references(structures: StructureSource, output: Union[str, Path], *, xc: str = "pbe",
                       basis: Optional[str] = None, auxbasis: Optional[str] = None, metric: Optional[str] = None,
                       grid_level: Optional[int] = None, conv_tol: float = 1e-9, max_cycle: int = 100,
                       density_fit_scf: bool = False, constrain_electrons: bool = False,
                       pseudo: Optional[str] = None, ke_cutoff: Optional[float] = None,
                       pbc_scheme: Optional[str] = None, n_workers: int = 1,
                       guess_model: Optional[Union[str, Path]] = None, progress: bool = True,
                       comm=None) -> ReferenceSummary:
    """Compute DFT references for ``structures`` and store them in the HDF5 file ``output``.

    Resumable: structures already in ``output`` (same position, same geometry) are skipped; a file
    written with other settings is refused. Invalid structures and failed SCFs are reported in the
    returned summary and nothing is written for them; non-converged SCFs are stored and flagged.
    ``n_workers`` processes share the cores (threads per worker = cores // workers). Periodic cells
    (``pbc`` all True) go through :mod:`rhocast.pbc`; ``pseudo``, ``ke_cutoff`` and ``pbc_scheme`` apply
    to them only. Unset settings take the defaults of :class:`ReferenceSettings`. ``guess_model`` (a
    model file or shipped model name) starts each molecule's SCF from that model's predicted density
    (:func:`rhocast.scf_guess.scf_guess`): fewer SCF cycles, the same converged references; structures
    with elements it has not seen start from minao. Each stored structure records its guess.

    ``comm`` (a :mod:`rhocast.parallel` communicator; every rank calls with the same arguments): the
    pending structures are dealt to ranks by estimated cost (electrons^3, largest first), each rank runs
    its own SCFs (with ``n_workers`` each) into the one dataset folder, and rank 0 returns the summary of
    all ranks (the others their own part).
    """
    from rhocast.parallel import SerialComm, deal
    from rhocast.progress import progress_bar

    comm = SerialComm() if comm is None else comm

    atoms_list = read_structures(structures)
    periodic_input = _all_periodic_or_none(atoms_list)
    settings = ReferenceSettings(xc, basis, auxbasis, metric, grid_level, conv_tol, max_cycle, density_fit_scf,
                                 constrain_electrons, pseudo, ke_cutoff, pbc_scheme).resolved(periodic_input)
    symbols = {s for a in atoms_list for s in a.get_chemical_symbols()}
    check_basis_name(settings.basis, symbols)
    check_basis_name(settings.auxbasis, symbols, "auxiliary")
    output = Path(output)
    done = store.open_for_append(output, settings.as_dict())
    summary = ReferenceSummary(str(output), len(atoms_list))
    pending = _pending(atoms_list, done, settings, summary)
    comm.barrier()  # every rank has read what is done before any rank appends: all deal the same list
    electrons = [float(atoms_list[i].numbers.sum() - charge_and_spin(atoms_list[i])[0]) for i in pending]
    pending = [pending[k] for k in deal([e ** 3 for e in electrons], comm.size)[comm.rank]]

    t0 = time.perf_counter()
    bar = progress_bar(total=len(pending), desc="references", unit="structure", show=progress and comm.rank == 0)

    tracebacks = []

    def commit(index, record, error, trace):
        if error is not None:
            summary.failed[index] = error
            tracebacks.append(trace)
        else:
            store.append_structure(output, index, record)
            summary.computed.append(index)
            summary.floors.append((record["floor"]["relative_l2"], record["floor"]["nmae"]))
            if not record["converged"]:
                summary.not_converged.append(index)
        bar.update()

    if guess_model is not None:
        if periodic_input:
            raise ValueError("guess_model starts molecular SCFs only; cells start from PySCF's guess")
        _load_guess_model(str(guess_model))  # a missing or bad model file fails here, before any SCF
        guess_model = str(guess_model)
    tasks = [(i, atoms_list[i], settings, guess_model) for i in pending]
    n_workers = max(1, min(n_workers, len(pending)))
    try:
        if n_workers == 1:
            for task in tasks:
                commit(*_worker(task))
        else:
            _run_pool(tasks, n_workers, commit)
    finally:
        bar.close()
        if comm.size > 1:
            _gather_summaries(summary, tracebacks, comm)
        if tracebacks and comm.rank == 0:
            summary.error_log = _append_error_log(output, tracebacks)
    summary.wall_time = time.perf_counter() - t0
    return summary


def _all_periodic_or_none(atoms_list: list) -> bool:
    """True for a list of 3D cells, False for molecules; a mixed or partially periodic input is an error."""
    periodic = {bool(a.pbc.any()) for a in atoms_list}
    if len(periodic) > 1:
        raise ValueError("the input mixes molecules and periodic cells: write them to separate datasets")
    for i, a in enumerate(atoms_list):
        if a.pbc.any() and not a.pbc.all():
            raise ValueError(f"{describe(a, i)} is periodic in some directions only: 3D cells or molecules")
    return periodic.pop() if periodic else False


def _pending(atoms_list: list, done: dict, settings: ReferenceSettings, summary: ReferenceSummary) -> list[int]:
    """Indices of the structures still to compute. Those stored already go to ``summary.skipped`` (a
    different structure at a stored position is an error), invalid ones to ``summary.failed``; the
    charge and spin of the pending ones are counted in ``summary.charge_spin``."""
    pending = []
    for i, a in enumerate(atoms_list):
        if i in done:
            if done[i] != structure_hash(a):
                raise ValueError(f"{describe(a, i)} differs from the structure stored at that position in "
                                 f"{summary.output}: this is another input; write to a new file")
            summary.skipped.append(i)
            continue
        try:
            validate_structure(a, i, basis=settings.basis, auxbasis=settings.auxbasis, pseudo=settings.pseudo)
        except StructureError as err:
            summary.failed[i] = str(err)
            continue
        pending.append(i)
        key = charge_and_spin(a)
        summary.charge_spin[key] = summary.charge_spin.get(key, 0) + 1
    return pending


def _append_error_log(output: Path, tracebacks: list[str]) -> str:
    """Append the failed structures' tracebacks to OUTPUT.errors.log, dated; returns its path."""
    log = output.with_name(output.name + ".errors.log")
    with open(log, "a") as f:
        f.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}\n" + "\n".join(tracebacks))
    return str(log)


def _gather_summaries(summary: ReferenceSummary, tracebacks: list, comm) -> None:
    """Rank 0's ``summary`` and ``tracebacks`` extended by the other ranks' (after they all finished)."""
    parts = comm.gather((summary.computed, summary.not_converged, summary.failed, summary.floors, tracebacks))
    if comm.rank != 0:
        return
    for computed, not_converged, failed, floors, traces in parts[1:]:
        summary.computed += computed
        summary.not_converged += not_converged
        summary.failed.update(failed)
        summary.floors += floors
        tracebacks += traces


def _run_pool(tasks: list, n_workers: int, commit) -> None:
    """Run ``tasks`` on ``n_workers`` processes; an interrupt (Ctrl-C, or SIGTERM turned into one by the
    command line) terminates the workers at once instead of waiting for their SCFs to finish."""
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // n_workers)
    pool = multiprocessing.Pool(n_workers, initializer=_worker_init, initargs=(threads,))
    try:
        for result in pool.imap_unordered(_worker, tasks):
            commit(*result)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
