/* Dipole of the first structure of an xyz file (element symbols, Angstrom) from an exported rhocast model,
 * through the C API: `dipole_c model.rcm molecule.xyz` prints the dipole in e Angstrom and its norm in Debye. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rhocast/rhocast.h"

static const double kBohrAngstrom = 0.5291772105638411; /* ase.units.Bohr */
static const double kDebyePerEAngstrom = 4.803204672997659; /* 1 / ase.units.Debye */
static const char* kSymbols[] = {"H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne",
                                 "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar"};

static int atomic_number(const char* symbol) {
    for (int z = 1; z <= (int)(sizeof kSymbols / sizeof kSymbols[0]); ++z)
        if (strcmp(symbol, kSymbols[z - 1]) == 0) return z;
    return 0;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.rcm STRUCTURE.xyz\n", argv[0]);
        return 2;
    }
    FILE* f = fopen(argv[2], "r");
    int n = 0;
    char line[512];
    if (!f || !fgets(line, sizeof line, f) || sscanf(line, "%d", &n) != 1 || n < 1 || !fgets(line, sizeof line, f)) {
        fprintf(stderr, "%s: not an xyz file (atom count, comment, then 'symbol x y z' lines)\n", argv[2]);
        return 1;
    }
    int* numbers = malloc(n * sizeof(int));
    double* positions = malloc(3 * n * sizeof(double));
    for (int i = 0; i < n; ++i) {
        char symbol[8];
        double x, y, z;
        if (!fgets(line, sizeof line, f) || sscanf(line, "%7s %lf %lf %lf", symbol, &x, &y, &z) != 4 ||
            !(numbers[i] = atomic_number(symbol))) {
            fprintf(stderr, "%s: atom line %d is not 'symbol x y z' with a known element (H-Ar)\n", argv[2], i + 1);
            return 1;
        }
        positions[3 * i] = x / kBohrAngstrom;
        positions[3 * i + 1] = y / kBohrAngstrom;
        positions[3 * i + 2] = z / kBohrAngstrom;
    }
    fclose(f);

    rhocast_model* model = NULL;
    double mu[3];
    if (rhocast_model_load(argv[1], &model) != RHOCAST_OK || rhocast_dipole(model, n, numbers, positions, mu) != RHOCAST_OK) {
        fprintf(stderr, "rhocast: %s\n", rhocast_last_error());
        rhocast_model_free(model);
        return 1;
    }
    for (int k = 0; k < 3; ++k) mu[k] *= kBohrAngstrom; /* e Bohr -> e Angstrom */
    printf("dipole (e Angstrom): %.15e %.15e %.15e\n", mu[0], mu[1], mu[2]);
    printf("|dipole| (Debye): %.6f\n", kDebyePerEAngstrom * sqrt(mu[0] * mu[0] + mu[1] * mu[1] + mu[2] * mu[2]));
    rhocast_model_free(model);
    free(numbers);
    free(positions);
    return 0;
}
