"""Opening rhocast's HDF5 files (reference datasets, models) with clear errors for bad files."""
from __future__ import annotations

from pathlib import Path

import h5py


def open_checked(path: Path, file_format: str, version, what: str) -> h5py.File:
    """``path`` opened read-only, after checking that it is a readable HDF5 file whose ``format`` and
    ``format_version`` attributes are ``file_format`` and ``version`` (an int or a tuple of readable ones); ``what`` names the kind of file
    in the error messages ("reference dataset", "model")."""
    if not path.is_file():
        raise FileNotFoundError(f"no {what} file {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"cannot read {path}: truncated or not an HDF5 file ({err})") from err
    if f.attrs.get("format") != file_format:
        f.close()
        raise ValueError(f"{path} is not a rhocast {what}")
    versions = version if isinstance(version, tuple) else (version,)
    if int(f.attrs["format_version"]) not in versions:
        found = int(f.attrs["format_version"])
        f.close()
        raise ValueError(f"{path} has {what} format version {found}; this rhocast reads version "
                         f"{' or '.join(map(str, versions))}")
    return f
