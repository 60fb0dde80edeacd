"""IR spectrum of liquid water from the rhocast dipole along rigid-TIP3P molecular dynamics (what an MD user
does with :class:`rhocast.calculator.DensityCalculator`).

1. References: PBE/def2-SVP (grid level 1) of small water clusters cut from TIP3P liquid (cached in
   benchmarks/cache/md_ir_clusters); a small model (demo settings) is fitted to them in the script.
2. MD: a periodic box of rigid TIP3P water (ASE's TIP3P forces, the package's vectorised RATTLE, which is
   ASE's FixBondLengths algorithm without its per-bond Python loop), Langevin NVT at 300 K, then NVE
   velocity Verlet; at every NVE step the calculator gives the box dipole M of the predicted density
   (``periodic=True``: at the unwrapped positions; ``molecules``: the electron count corrected molecule
   by molecule, so M is the sum of the molecular dipoles), and the TIP3P point charges give theirs for
   comparison. The model sees each molecule's neighbours within its cutoff, so M carries induced dipoles.
3. Spectrum: alpha(w) n(w) = beta / (6 V c eps0) int <dM/dt(0) . dM/dt(t)> exp(-i w t) dt, the harmonic
   quantum correction factor beta hbar w / (1 - exp(-beta hbar w)) applied to the classical correlation
   function (which turns the quantum expression into this classical one); dM/dt by central differences,
   the autocorrelation averaged over time origins (FFT), a Hann window to the maximum lag. Rigid molecules
   have no intramolecular bands: what shows is the libration band and the low-frequency translations.

    python benchmarks/md_ir.py [--molecules 16] [--production-ps 2]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from ase import units
from scipy.integrate import trapezoid

from _record import markdown_table, record
from rhocast import sources
from rhocast.calculator import DensityCalculator
from rhocast.dataset import Dataset
from rhocast.demo import MODEL
from rhocast.model import DensityModel
from rhocast.properties import function_moments
from rhocast.references import compute_references

CACHE = Path(__file__).with_name("cache")
FIGURES = Path(__file__).with_name("figures")
REFERENCES = dict(xc="pbe", basis="def2-svp", auxbasis="def2-universal-jkfit", grid_level=1, conv_tol=1e-8)
TIP3P_CHARGES = {8: -0.834, 1: 0.417}  # e, as in ase.calculators.tip3p
TEMPERATURE = 300.0  # K


def fitted_model(n_clusters: int, cluster_size: int, seed: int) -> tuple[DensityModel, float]:
    """The demo-settings model fitted to ``n_clusters`` clusters of ``cluster_size`` waters; fit time (s)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"md_ir_clusters_{n_clusters}x{cluster_size}_seed{seed}"
    clusters = sources.water_clusters(n_clusters, n_molecules=cluster_size, cell_molecules=16, seed=seed,
                                      equilibration_ps=0.5, spacing_ps=0.2)
    compute_references(clusters, path, progress=False, **REFERENCES)
    t = time.perf_counter()
    model = DensityModel(**MODEL).fit(Dataset(path), progress=False)
    return model, time.perf_counter() - t


def run_md(model: DensityModel, n_molecules: int, timestep_fs: float, equilibration_ps: float,
           production_ps: float, seed: int) -> dict:
    """Langevin NVT then NVE; the rhocast and TIP3P box dipoles (e Angstrom) at every NVE step."""
    from ase.md.langevin import Langevin
    from ase.md.verlet import VelocityVerlet

    rng = np.random.default_rng(seed)
    atoms = sources.tip3p_water_box(n_molecules, temperature=TEMPERATURE, rng=rng)
    Langevin(atoms, timestep_fs * units.fs, temperature_K=TEMPERATURE, friction=0.01 / units.fs, fixcm=False,
             rng=rng).run(int(round(equilibration_ps * 1000 / timestep_fs)))
    probe = atoms.copy()  # the MD's atoms carry the TIP3P calculator; the dipole is asked of a twin
    probe.info.update(charge=0)
    probe.calc = DensityCalculator(model, periodic=True, molecules=[[3 * i, 3 * i + 1, 3 * i + 2]
                                                                    for i in range(n_molecules)])
    charges = np.array([TIP3P_CHARGES[int(z)] for z in atoms.numbers])
    rhocast, tip3p, energy, temperature, dipole_time = [], [], [], [], []

    def observe():
        probe.positions = atoms.positions
        t = time.perf_counter()
        rhocast.append(probe.get_dipole_moment())
        dipole_time.append(time.perf_counter() - t)
        tip3p.append(charges @ atoms.positions)
        energy.append(atoms.get_total_energy())
        # rigid molecules: 6 degrees of freedom each (ASE's get_temperature counts 3 per atom)
        temperature.append(2 * atoms.get_kinetic_energy() / (6 * n_molecules * units.kB))

    dyn = VelocityVerlet(atoms, timestep_fs * units.fs)
    dyn.attach(observe, interval=1)
    t = time.perf_counter()
    dyn.run(int(round(production_ps * 1000 / timestep_fs)))
    q, _ = function_moments(model.auxbasis_, atoms.numbers)  # the model's own count, before the correction
    per_molecule = np.add.reduceat(q * model.predict(probe), model.auxbasis_.offsets(atoms.numbers)[:-1:3])
    return {"count_error": float(np.abs(per_molecule - 10).mean()), "rhocast": np.array(rhocast), "tip3p": np.array(tip3p), "energy": np.array(energy),
            "temperature": np.array(temperature), "volume": atoms.get_volume(), "n_atoms": len(atoms),
            "dipole_time": float(np.mean(dipole_time)), "md_time": time.perf_counter() - t}


def ir_spectrum(dipoles: np.ndarray, timestep_fs: float, volume: float, temperature: float,
                max_lag_fs: float) -> tuple[np.ndarray, np.ndarray]:
    """(wavenumber in cm^-1, alpha(w) n(w) in cm^-1) from box dipoles (n_steps, 3) in e Angstrom, one per
    ``timestep_fs``, of a box of ``volume`` Angstrom^3 (formula in the module's documentation)."""
    mdot = np.gradient(dipoles, timestep_fs, axis=0)  # e Angstrom / fs
    n = len(mdot)
    n_lag = min(n - 1, int(round(max_lag_fs / timestep_fs)))
    padded = np.fft.rfft(mdot, 2 * n, axis=0)
    acf = np.fft.irfft((padded * padded.conj()).real.sum(axis=1), 2 * n)[:n_lag + 1] / (n - np.arange(n_lag + 1))
    acf *= np.hanning(2 * n_lag + 1)[n_lag:]  # the decaying half of a Hann window
    n_fft = 8 * n_lag  # zero padding: a smooth curve (no new resolution)
    # int_-inf^inf C(t) cos(w t) dt for an even C, by the trapezoid rule on t = k dt
    transform = timestep_fs * (2 * np.fft.rfft(acf, n_fft).real - acf[0])  # (e Angstrom / fs)^2 fs
    wavenumber = np.fft.rfftfreq(n_fft, timestep_fs * 1e-15) / (units._c * 100)
    si = (units._e * 1e-10 / 1e-15) ** 2 * 1e-15  # (e Angstrom / fs)^2 fs -> (C m / s)^2 s
    beta = 1 / (units._k * temperature)
    alpha_n = beta / (6 * volume * 1e-30 * units._c * units._eps0) * transform * si / 100  # m^-1 -> cm^-1
    return wavenumber, alpha_n


def sum_rule(dipoles: np.ndarray, timestep_fs: float, volume: float, temperature: float) -> float:
    """int_0^inf alpha(w) n(w) d(nu~) in cm^-2 that the formula of :func:`ir_spectrum` implies:
    beta <|dM/dt|^2> / (12 c V eps0 c_cm), since int C~(w) dw = 2 pi C(0) (the Hann window is 1 at t = 0)."""
    mdot = np.gradient(dipoles, timestep_fs, axis=0) * units._e * 1e-10 / 1e-15  # C m / s
    beta = 1 / (units._k * temperature)
    per_m = beta * np.mean(np.sum(mdot**2, axis=1)) / (12 * volume * 1e-30 * units._c * units._eps0)  # m^-1 s^-1
    return per_m / 100 / (units._c * 100)  # alpha n in cm^-1, d(nu~) = d(omega) / (2 pi c_cm)


def plot(path: Path, spectra: dict, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, (x, y) in spectra.items():
        keep = x <= 1500
        ax.plot(x[keep], y[keep], label=label)
    ax.set_xlabel("wavenumber (cm$^{-1}$)")
    ax.set_ylabel(r"$\alpha(\omega)\,n(\omega)$ (cm$^{-1}$)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--molecules", type=int, default=16, help="waters in the periodic box (default 16)")
    p.add_argument("--clusters", type=int, default=10, help="reference clusters (default 10)")
    p.add_argument("--cluster-size", type=int, default=4, help="waters per reference cluster (default 4)")
    p.add_argument("--timestep-fs", type=float, default=2.0, help="MD time step, fs (default 2)")
    p.add_argument("--equilibration-ps", type=float, default=1.0, help="Langevin NVT before the NVE run, ps")
    p.add_argument("--production-ps", type=float, default=2.0, help="NVE run with the dipole, ps (default 2)")
    p.add_argument("--max-lag-fs", type=float, default=400.0, help="longest correlation time, fs (default 400)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    t0 = time.perf_counter()
    model, fit_time = fitted_model(args.clusters, args.cluster_size, args.seed)
    md = run_md(model, args.molecules, args.timestep_fs, args.equilibration_ps, args.production_ps, args.seed)
    temperature = float(md["temperature"].mean())
    spectra = {name: ir_spectrum(md[name], args.timestep_fs, md["volume"], temperature, args.max_lag_fs)
               for name in ("rhocast", "tip3p")}
    title = (f"IR of rigid TIP3P water, {args.molecules} molecules, 300 K, {args.production_ps:g} ps NVE:\n"
             f"rhocast dipole (PBE/def2-SVP model, {args.clusters} {args.cluster_size}-water clusters) "
             "vs TIP3P charges")
    figure = plot(FIGURES / "md_ir_spectrum.png", {"rhocast dipole": spectra["rhocast"],
                                                   "TIP3P point charges": spectra["tip3p"]}, title)
    n_atoms = md["n_atoms"]
    drift = (md["energy"][-1] - md["energy"][0]) / n_atoms * 1e3
    rows = []
    for name, (x, y) in spectra.items():
        band = (x > 300) & (x < 1500)
        m = md[name]
        rows.append([name, np.linalg.norm(m.mean(axis=0)), np.linalg.norm(m - m.mean(axis=0), axis=1).std(),
                     x[band][np.argmax(y[band])], y[band].max(), trapezoid(y[x < 1500], x[x < 1500]),
                     trapezoid(y, x) / sum_rule(m, args.timestep_fs, md["volume"], temperature)])
    table = markdown_table(["dipole", "|<M>| (e A)", "std |M - <M>| (e A)", "libration peak (cm^-1)",
                            "peak alpha n (cm^-1)", "int alpha n dnu, 0-1500 (cm^-2)",
                            "int alpha n dnu / sum rule"], rows)
    record("IR spectrum of liquid water from the rhocast dipole along TIP3P MD",
           f"Model: demo settings {MODEL}, fitted in {fit_time:.1f} s to {args.clusters} clusters of "
           f"{args.cluster_size} waters (PBE/def2-SVP, def2-universal-jkfit Coulomb fit, grid level 1; cut from "
           f"TIP3P liquid). MD: {args.molecules} rigid TIP3P waters ({n_atoms} atoms, {md['volume']:.0f} A^3, "
           f"1 g/cm^3), Langevin 300 K for {args.equilibration_ps:g} ps, then {args.production_ps:g} ps NVE at "
           f"{args.timestep_fs:g} fs (mean T {temperature:.0f} K from 6 degrees of freedom per molecule, total-energy change "
           f"{drift:.3f} meV/atom). Dipole at every NVE step from DensityCalculator(model, periodic=True, "
           f"molecules=...): "
           f"{1e3 * md['dipole_time']:.1f} ms/step ({1e3 * md['dipole_time'] / n_atoms:.2f} ms/atom, prediction "
           f"+ electron-count correction); MD loop {md['md_time']:.0f} s, whole script "
           f"{time.perf_counter() - t0:.0f} s. The uncorrected prediction's electron count is off by "
           f"{md['count_error']:.3f} e per molecule in the last frame (the model extrapolates from small clusters "
           f"to the liquid; the per-molecule correction removes it). Spectrum: alpha(w) n(w) = beta/(6 V c eps0) FT<dM/dt(0).dM/dt(t)> "
           f"(harmonic quantum correction) at the mean T, Hann window to {args.max_lag_fs:g} fs "
           f"(resolution ~{1e15 / (args.max_lag_fs * units._c * 100):.0f} cm^-1). Figure: "
           f"benchmarks/figures/{figure.name}.\n\n{table}")


if __name__ == "__main__":
    main()
