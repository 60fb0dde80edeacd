"""PNG figures: learning curves, coefficient parity per element and angular order, CG loss histories,
energy-error histograms, density-error slices. Every figure has labelled axes with units and a title."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from ase import Atoms


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Union[str, Path], dpi: int = 120) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return Path(path)


def learning_curve(path: Union[str, Path], sizes: Sequence[int], errors: Sequence[float], split: str,
                   floor: Optional[float] = None, ylabel: str = "relative L2 error (%)",
                   title: str = "learning curve") -> Path:
    """Error against the number of training structures; ``split`` names the structures the error is
    measured on (e.g. "validation", "held-out test")."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.8))
    ax.loglog(sizes, errors, "o-", label=f"model, {split} structures")
    if floor is not None:
        ax.axhline(floor, ls="--", color="gray", label="fitting floor (fit vs SCF)")
    ax.set_xlabel("training structures")
    ax.set_ylabel(f"{ylabel}, {split}")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def coefficient_parity(path: Union[str, Path], structures: Sequence[Atoms], reference: Sequence[np.ndarray],
                       predicted: Sequence[np.ndarray], basis) -> Path:
    """Predicted against reference coefficients, one panel per (element, angular order l), each titled
    with its RMS error: a mean over all coefficients hides an element or an l that the model misses."""
    from ase.data import chemical_symbols

    keys, ref, pred = [], [], []
    for atoms, r, p in zip(structures, reference, predicted):
        for z in atoms.numbers:
            for l, _ in basis.radial_channels(int(z)):
                keys += [(int(z), l)] * (2 * l + 1)
        ref.append(r)
        pred.append(p)
    keys, ref, pred = np.array(keys), np.concatenate(ref), np.concatenate(pred)
    groups = sorted({(int(z), int(l)) for z, l in keys})
    n_col = min(4, len(groups))
    n_row = -(-len(groups) // n_col)
    plt = _pyplot()
    fig, axes = plt.subplots(n_row, n_col, figsize=(3 * n_col, 3 * n_row), squeeze=False)
    for ax, (z, l) in zip(axes.flat, groups):
        sel = (keys[:, 0] == z) & (keys[:, 1] == l)
        x, y = ref[sel], pred[sel]
        ax.plot(x, y, ".", ms=2)
        lim = [min(x.min(), y.min()), max(x.max(), y.max())]
        ax.plot(lim, lim, "k-", lw=0.5)
        ax.set_title(f"{chemical_symbols[z]}, l = {l}: RMSE {np.sqrt(np.mean((y - x) ** 2)):.1e}", fontsize=9)
        ax.set_xlabel("reference coefficient (a.u.)", fontsize=8)
        ax.set_ylabel("predicted coefficient (a.u.)", fontsize=8)
    for ax in axes.flat[len(groups):]:
        ax.axis("off")
    fig.suptitle("density coefficients, predicted against reference")
    return _save(fig, path, dpi=100)


def loss_history(path: Union[str, Path], history: Sequence[float]) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    h = np.asarray(history)
    ax.semilogy(np.arange(1, len(h) + 1), h - h.min() + 1e-16 * max(1.0, abs(h.min())))
    ax.set_xlabel("CG iteration")
    ax.set_ylabel("loss - final loss (e$^2$/Bohr$^3$)")
    ax.set_title("conjugate-gradient convergence")
    return _save(fig, path)


def energy_error_histogram(path: Union[str, Path], errors: dict[str, np.ndarray], unit: str,
                           threshold: Optional[float] = None, title: str = "energy errors") -> Path:
    """Histogram of signed energy errors, one series per name in ``errors``, with the MAE in the legend
    and +-``threshold`` (e.g. 1 kcal/mol) marked: a parity of total energies hides errors of this size."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    values = [np.asarray(v, dtype=float) for v in errors.values()]
    span = max(float(np.max(np.abs(v))) for v in values) or 1.0
    bins = np.linspace(-span, span, 41)
    for (name, v) in zip(errors, values):
        ax.hist(v, bins=bins, histtype="step", lw=1.5, label=f"{name}: MAE {np.mean(np.abs(v)):.3g} {unit}")
    if threshold is not None:
        for s in (-1, 1):
            ax.axvline(s * threshold, color="gray", ls="--", lw=0.8)
    ax.set_xlabel(f"predicted - reference ({unit})")
    ax.set_ylabel("structures")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def density_slice(path: Union[str, Path], atoms: Atoms, reference: np.ndarray, predicted: np.ndarray, basis,
                  extent: float = 3.0, n: int = 120) -> Path:
    """Reference density and prediction error in the plane through atoms 0, 1 and 2 (centred on their
    mean, axes in Angstrom); the atoms within 0.5 Angstrom of the plane are marked with their symbols."""
    from rhocast.properties import density_on_grid

    plt = _pyplot()
    pos = atoms.positions
    plane = pos[:3] if len(pos) > 2 else pos
    centre = plane.mean(axis=0)
    u = pos[1] - pos[0]
    u /= np.linalg.norm(u)
    v = (pos[2] - pos[0]) if len(pos) > 2 else np.cross(u, [0, 0, 1.0]) + 1e-3
    v = v - (v @ u) * u
    v /= np.linalg.norm(v)
    s = np.linspace(-extent, extent, n)
    pts = (centre + s[:, None, None] * u + s[None, :, None] * v).reshape(-1, 3)
    ref = density_on_grid(atoms, reference, basis, pts).reshape(n, n)
    err = density_on_grid(atoms, predicted, basis, pts).reshape(n, n) - ref
    names = atoms.get_chemical_symbols()
    plane_name = "-".join(f"{names[k]}{k}" for k in range(min(3, len(atoms))))
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.2))
    im = axes[0].imshow(np.log10(np.maximum(ref, 1e-6)).T, origin="lower", extent=[-extent, extent] * 2)
    axes[0].set_title("log10 reference density (e/Bohr$^3$)", fontsize=9)
    fig.colorbar(im, ax=axes[0])
    lim = np.abs(err).max()
    im = axes[1].imshow(err.T, origin="lower", extent=[-extent, extent] * 2, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[1].set_title("prediction - reference (e/Bohr$^3$)", fontsize=9)
    fig.colorbar(im, ax=axes[1])
    normal = np.cross(u, v)
    near = np.abs((pos - centre) @ normal) < 0.5
    for ax in axes:
        for k in np.flatnonzero(near):
            x, y = (pos[k] - centre) @ u, (pos[k] - centre) @ v
            if abs(x) < extent and abs(y) < extent:
                ax.plot(x, y, "k+", ms=6)
                ax.annotate(names[k], (x, y), xytext=(3, 3), textcoords="offset points", fontsize=8)
        ax.set_xlabel("along atom 0 -> 1 (Angstrom)")
        ax.set_ylabel("in-plane, perpendicular (Angstrom)")
    fig.suptitle(f"{atoms.get_chemical_formula()}: density in the plane of atoms {plane_name}")
    return _save(fig, path, dpi=110)
