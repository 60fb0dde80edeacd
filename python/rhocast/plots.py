"""PNG figures: learning curves, parity plots, CG loss histories, density-error slices."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curve(path: Union[str, Path], sizes: Sequence[int], errors: Sequence[float],
                   floor: float = None, ylabel: str = "relative L2 error (%)") -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.loglog(sizes, errors, "o-", label="model")
    if floor is not None:
        ax.axhline(floor, ls="--", color="gray", label="fitting floor")
    ax.set_xlabel("training structures")
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def parity(path: Union[str, Path], reference: np.ndarray, predicted: np.ndarray,
           label: str = "coefficient") -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(reference, predicted, ".", ms=2)
    lim = [min(reference.min(), predicted.min()), max(reference.max(), predicted.max())]
    ax.plot(lim, lim, "k-", lw=0.5)
    ax.set_xlabel(f"reference {label}")
    ax.set_ylabel(f"predicted {label}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def loss_history(path: Union[str, Path], history: Sequence[float]) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    h = np.asarray(history)
    ax.semilogy(np.arange(1, len(h) + 1), h - h.min() + 1e-16 * max(1.0, abs(h.min())))
    ax.set_xlabel("CG iteration")
    ax.set_ylabel("loss - final loss")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def density_slice(path: Union[str, Path], atoms, reference: np.ndarray, predicted: np.ndarray, basis,
                  extent: float = 3.0, n: int = 120) -> Path:
    """Reference density and prediction error in the plane of the first three atoms (Angstrom)."""
    from rhocast.properties import density_on_grid

    plt = _pyplot()
    pos = atoms.positions
    centre = pos.mean(axis=0)
    u = pos[1] - pos[0]
    u /= np.linalg.norm(u)
    v = (pos[2] - pos[0]) if len(pos) > 2 else np.cross(u, [0, 0, 1.0]) + 1e-3
    v = v - (v @ u) * u
    v /= np.linalg.norm(v)
    s = np.linspace(-extent, extent, n)
    grid = centre + s[:, None, None] * u + s[None, :, None] * v
    pts = grid.reshape(-1, 3)
    ref = density_on_grid(atoms, reference, basis, pts).reshape(n, n)
    err = density_on_grid(atoms, predicted, basis, pts).reshape(n, n) - ref
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    im = axes[0].imshow(np.log10(np.maximum(ref, 1e-6)).T, origin="lower", extent=[-extent, extent] * 2)
    axes[0].set_title("log10 reference density (e/Bohr^3)")
    fig.colorbar(im, ax=axes[0])
    lim = np.abs(err).max()
    im = axes[1].imshow(err.T, origin="lower", extent=[-extent, extent] * 2, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[1].set_title("prediction - reference (e/Bohr^3)")
    fig.colorbar(im, ax=axes[1])
    for ax in axes:
        ax.set_xlabel("Angstrom")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
