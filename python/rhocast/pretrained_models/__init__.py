"""Models shipped with rhocast, loaded by name: ``rhocast.pretrained("qm9-pbe-def2svp")``, or the name in
place of a model file on the command line (``rhocast predict qm9-pbe-def2svp mol.xyz -o out.h5``).

Each model is one file ``<name>.h5`` in this folder; its reference settings, training set and measured
test errors are in the file (``DensityModel.fit_report_`` and the ``benchmark`` entry of its metadata)
and in the README's table. A model is replaced only when a better one is measured.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

FOLDER = Path(__file__).parent


def available() -> list[str]:
    """Names of the models that ship with this installation."""
    return sorted(p.stem for p in FOLDER.glob("*.h5"))


def pretrained(name: str):
    """The shipped :class:`rhocast.DensityModel` called ``name``."""
    from rhocast.model import DensityModel

    path = FOLDER / f"{name}.h5"
    if not path.is_file():
        names = ", ".join(available()) or "none in this installation"
        raise ValueError(f"no pretrained model {name!r} (available: {names})")
    return DensityModel.load(path)


def load_model(file_or_name: Union[str, Path]):
    """A model from a file, or a shipped model by name when no such file exists (the command line's rule)."""
    from rhocast.model import DensityModel

    path = Path(file_or_name)
    if path.exists() or path.suffix:
        return DensityModel.load(path)
    return pretrained(str(file_or_name))
