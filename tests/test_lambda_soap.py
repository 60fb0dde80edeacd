"""lambda-SOAP: equivariance with the density's own Wigner matrices, invariances, selection."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from rhocast import _core
from rhocast.basis import AuxiliaryBasis
from rhocast.descriptors import LambdaSoap, farthest_point_sampling
from rhocast.references import ReferenceSettings, reference_record
from equivariance import random_rotation, real_spherical_harmonics, wigner_d_real
from threads import serial_and_parallel

SMALL = dict(cutoff=3.5, max_radial=4, max_angular=4, max_lambda=4, atomic_width=0.3, cutoff_width=0.5)


def _rotate(feats, rot):
    return {lam: np.einsum("ij,ajf->aif", wigner_d_real(lam, rot), f) for lam, f in feats.items()}


def _assert_feats_equal(a, b, atol=1e-10):
    assert a.keys() == b.keys()
    for lam in a:
        np.testing.assert_allclose(a[lam], b[lam], atol=atol)


@pytest.fixture(scope="module")
def ethanol_soap():
    return molecule("CH3CH2OH"), LambdaSoap([1, 6, 8], **SMALL)


def test_harmonics_are_the_basis_harmonics():
    pts = np.random.default_rng(0).normal(size=(50, 3))
    for l in range(8):
        np.testing.assert_allclose(_core.real_spherical_harmonics(l, pts), real_spherical_harmonics(l, pts),
                                   atol=1e-13)


def test_rotations(ethanol_soap):
    atoms, soap = ethanol_soap
    ref = soap.compute(atoms)
    assert all(np.abs(f).max() > 0.05 for f in ref.values())  # nothing trivially zero
    for seed in range(20):
        rot = random_rotation(seed)
        rotated = atoms.copy()
        rotated.positions = atoms.positions @ rot.T
        _assert_feats_equal(soap.compute(rotated), _rotate(ref, rot))


def test_inversion_gives_the_parity_of_proper_tensors(ethanol_soap):
    atoms, soap = ethanol_soap
    ref = soap.compute(atoms)
    inverted = atoms.copy()
    inverted.positions = -atoms.positions
    _assert_feats_equal(soap.compute(inverted), {lam: (-1) ** lam * f for lam, f in ref.items()})
    # equivalently: D^lambda(-I) = (-1)^lambda, as for the density coefficients


def test_translation_and_permutation(ethanol_soap):
    atoms, soap = ethanol_soap
    ref = soap.compute(atoms)
    moved = atoms.copy()
    moved.positions += [1.3, -2.7, 0.4]
    _assert_feats_equal(soap.compute(moved), ref)
    perm = np.random.default_rng(3).permutation(len(atoms))
    _assert_feats_equal(soap.compute(atoms[perm]), {lam: f[perm] for lam, f in ref.items()})


@pytest.mark.parametrize("repeat", [(2, 2, 2), (3, 1, 1)])
def test_supercells_give_identical_features(repeat):
    cell = np.array([[4.2, 0.0, 0.0], [1.1, 4.0, 0.0], [0.5, -0.7, 4.4]])
    atoms = Atoms("OH2", positions=[[0.2, 0.3, 0.1], [1.0, 0.6, 0.3], [-0.4, 0.9, 0.2]], cell=cell, pbc=True)
    soap = LambdaSoap([1, 8], **{**SMALL, "cutoff": 5.0})  # cutoff longer than the cell
    ref = soap.compute(atoms)
    big = soap.compute(atoms.repeat(repeat))
    n = int(np.prod(repeat))
    for lam in ref:
        np.testing.assert_allclose(big[lam], np.tile(ref[lam], (n, 1, 1)), atol=1e-10)


def test_continuity_at_the_cutoff():
    soap = LambdaSoap([1], **SMALL)
    feats = []
    for d in np.linspace(3.2, 3.6, 81):  # a neighbour crosses the 3.5 A cutoff
        a = Atoms("H3", positions=[[0, 0, 0], [0.9, 0.3, 0], [d * 0.6, d * 0.8, 0]])
        feats.append(np.concatenate([f[0].ravel() for f in soap.compute(a).values()]))
    steps = np.abs(np.diff(feats, axis=0)).max(axis=1)
    assert steps.max() < 0.02  # no jump; a discontinuity would show as one large step
    np.testing.assert_allclose(feats[-1], feats[-2], atol=1e-14)  # beyond the cutoff nothing changes


def test_subset_equals_full(ethanol_soap):
    atoms, soap = ethanol_soap
    full = soap.compute(atoms)
    sub = soap.compute(atoms, atoms_subset=[4, 1])
    _assert_feats_equal(sub, {lam: f[[4, 1]] for lam, f in full.items()}, atol=0)
    both = soap.compute([atoms, atoms], atoms_subset=[[0], None])
    assert both[0].shape[0] == 1 + len(atoms)


def test_serial_equals_parallel(ethanol_soap):
    atoms, soap = ethanol_soap
    a, b = serial_and_parallel(lambda: soap.compute(atoms))
    _assert_feats_equal(a, b, atol=0)


def test_normalisation_then_selection_is_deterministic(ethanol_soap):
    atoms, _ = ethanol_soap
    soap = LambdaSoap([1, 6, 8], **SMALL)
    full = soap.compute(atoms)
    for f in full.values():
        np.testing.assert_allclose(np.linalg.norm(f.reshape(len(f), -1), axis=1), 1.0)  # per atom and lambda
    soap.select_features([atoms], 50)
    again = LambdaSoap([1, 6, 8], **SMALL).select_features([atoms], 50)
    for lam in full:
        np.testing.assert_array_equal(soap.selected_[lam], again.selected_[lam])
        # selected columns are the normalised full features, not renormalised after selection
        np.testing.assert_allclose(soap.compute(atoms)[lam], full[lam][:, :, soap.selected_[lam]], atol=1e-14)
    restored = LambdaSoap.from_dict(soap.to_dict())
    _assert_feats_equal(restored.compute(atoms), soap.compute(atoms), atol=0)


def test_farthest_point_sampling():
    pts = np.array([[0, 0], [10, 0], [0.1, 0], [5, 5], [10, 0.1]])
    assert list(farthest_point_sampling(pts, 3)) == [4, 0, 3]  # largest norm first, then farthest


def test_unknown_species_is_refused():
    with pytest.raises(ValueError, match="not among the descriptor's species"):
        LambdaSoap([1, 8], **SMALL).compute(molecule("CH4"))


def test_same_wigner_matrices_rotate_features_and_density():
    """Descriptor and density-fit target share one convention: one D^l rotates both."""
    settings = ReferenceSettings(xc="hf", basis="sto-3g", auxbasis="def2-universal-jkfit", conv_tol=1e-12).resolved()
    soap = LambdaSoap([1, 8], **SMALL)
    a = molecule("H2O")
    rot = random_rotation(11)
    b = a.copy()
    b.positions = a.positions @ rot.T
    # D^l built from the compiled core's own harmonics
    pts = np.random.default_rng(5).normal(size=(40, 3))
    d = {l: _core.real_spherical_harmonics(l, pts @ rot.T).T @ np.linalg.pinv(_core.real_spherical_harmonics(l, pts).T)
         for l in range(5)}
    fa, fb = soap.compute(a), soap.compute(b)
    for lam in fa:
        np.testing.assert_allclose(np.einsum("ij,ajf->aif", d[lam], fa[lam]), fb[lam], atol=1e-10)
    ca, cb = (reference_record(x, settings)["coefficients"] for x in (a, b))
    basis, off = AuxiliaryBasis(settings.auxbasis, a.numbers), 0
    for z in a.numbers:
        for shell in basis.shells[z]:
            n = 2 * shell.l + 1
            np.testing.assert_allclose(d[shell.l] @ ca[off:off + n], cb[off:off + n], atol=1e-8)
            off += n
