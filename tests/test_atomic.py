"""rhocast.atomic: the destination holds either its old content or the whole new one, never a part."""
import pytest

from rhocast.atomic import atomic_write, write_bytes_atomic


def test_error_while_writing_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.h5"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed half-way")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def test_finished_write_replaces_the_file(tmp_path):
    path = tmp_path / "out.json"
    path.write_bytes(b"old")
    write_bytes_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
