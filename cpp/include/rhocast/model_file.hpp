// The exported model file (.rcm), how a C or C++ host reads a model without Python or HDF5.
//
// Why not the HDF5 model itself: h5py ships no HDF5 headers and a system libhdf5 is not guaranteed on
// an MD machine, so the core reads a flat binary that Python writes (DensityModel.export(path) or
// `rhocast export model.h5 model.rcm`). Everything is little-endian; integers are int64, reals float64
// (the exact values of the model, so C++ predictions equal Python's to rounding).
//
//   "RHOCASTM"                          8 bytes, magic
//   version                             int64 (kModelFileVersion)
//   cutoff, atomic_width, cutoff_width  float64, lambda-SOAP settings in Angstrom (see predictor.hpp)
//   max_radial, max_angular, max_lambda int64
//   zeta                                float64
//   n_species, Z[n_species]             int64, ascending
//   per lambda = 0..max_lambda:         n, column[n] (int64; n = 0 keeps every column)
//   per species (ascending Z):
//     Z, n_shells                       int64
//     per shell: l, n_primitives, exponents[n] (Bohr^-2), coefficients[n]  (normalisation included:
//                phi_m = sum_k c_k r^l exp(-a_k r^2) Y_lm with orthonormal real Y_lm)
//     baseline: n, values[n]            canonical order
//     per lambda: sparse features  rows, cols, values (row-major)
//     per lambda: projector        rows, cols, values (row-major; 0 x 0 when no shell has l = lambda)
//   weights: n, values[n]
//   "END\0"                             4 bytes
#pragma once

#include <string>

#include "rhocast/predictor.hpp"

namespace rhocast {

constexpr long kModelFileVersion = 1;

// Reads an exported model file; throws std::runtime_error naming the file and what is wrong.
ModelData load_model(const std::string& path);

}  // namespace rhocast
