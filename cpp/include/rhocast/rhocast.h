/* The C API of rhocast, for C and Fortran hosts: an opaque model handle, status codes, and the last
 * error message of the calling thread. Positions are in Bohr (n_atoms x 3, row-major), coefficients in
 * canonical order (atom -> shell -> m), dipoles in e Bohr. Models are exported files (.rcm,
 * rhocast/model_file.hpp). Link with rhocast::core (C++ runtime and OpenMP). */
#ifndef RHOCAST_H
#define RHOCAST_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rhocast_model rhocast_model;

typedef enum {
    RHOCAST_OK = 0,
    RHOCAST_ERROR_FILE = 1,     /* the model file cannot be read */
    RHOCAST_ERROR_INPUT = 2,    /* an argument is invalid (null pointer, unknown element, small buffer) */
    RHOCAST_ERROR_INTERNAL = 3  /* anything else */
} rhocast_status;

/* The message of the last failed call on this thread ("" when none). */
const char* rhocast_last_error(void);

rhocast_status rhocast_model_load(const char* path, rhocast_model** model);
void rhocast_model_free(rhocast_model* model);

/* Number of coefficients of a structure of n_atoms atoms with these atomic numbers. */
rhocast_status rhocast_model_n_coefficients(const rhocast_model* model, int n_atoms, const int* numbers,
                                            long* n_coefficients);

/* Coefficients of a molecule into the caller's buffer of `capacity` doubles. */
rhocast_status rhocast_predict(const rhocast_model* model, int n_atoms, const int* numbers,
                               const double* positions, double* coefficients, long capacity);

/* Dipole (e Bohr, about any origin) of a neutral molecule: nuclei plus the predicted density corrected
 * to sum Z electrons, as rhocast.properties.dipole_moment(renormalize=True). */
rhocast_status rhocast_dipole(const rhocast_model* model, int n_atoms, const int* numbers, const double* positions,
                              double dipole[3]);

/* Atomic polar tensors d mu / d R of that dipole (the analytic position gradients of the prediction and
 * of the electron-count correction, as rhocast.gradients.dipole_derivatives), into the caller's buffer of
 * n_atoms x 3 x 3 doubles: out[9 b + 3 x + y] = d mu_x / d R_{b, y}, in e (e Bohr per Bohr, the same
 * number as e Angstrom per Angstrom). They sum over b to zero (a translation does not change the dipole).
 * cell: 9 doubles, rows the lattice vectors (Bohr), or NULL; pbc: 3 flags, or NULL for a molecule.
 * Molecules only (pbc NULL or all 0): the dipole of a periodic cell is not defined by its density, so
 * pbc with any flag set is refused with RHOCAST_ERROR_INPUT and a message. */
rhocast_status rhocast_dipole_derivatives(const rhocast_model* model, int n_atoms, const int* numbers,
                                          const double* positions, const double* cell, const int* pbc,
                                          double* out);

#ifdef __cplusplus
}
#endif

#endif
