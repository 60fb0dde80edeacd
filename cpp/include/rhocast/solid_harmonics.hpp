// Real solid harmonics r^l Y_lm as polynomials in x, y, z.
//
// Y_lm are the orthonormal real spherical harmonics of basis.hpp (m = -l..l; m > 0 ~ cos, m < 0 ~ sin,
// m = +1 is +x, m = -1 is +y). The expansion is Helgaker, Jorgensen & Olsen eq. 6.4.47-6.4.50
// (Racah-normalised S_lm), rescaled by sqrt((2l+1)/4pi).
#pragma once

#include <array>
#include <vector>

namespace rhocast {

struct CartesianTerm {
    std::array<int, 3> powers;  // x^px y^py z^pz, px + py + pz = l
    double coefficient;
};

// n! as a double (exact up to 22!).
double factorial(int n);

// terms[m + l]: the Cartesian expansion of r^l Y_lm.
std::vector<std::vector<CartesianTerm>> solid_harmonic_terms(int l);

// Y_lm(x, y, z) for m = -l..l at the point (x, y, z) (need not be normalised: r^l Y_lm is returned
// when `solid` is true, Y_lm of the direction otherwise).
std::vector<double> real_spherical_harmonics(int l, double x, double y, double z, bool solid = false);

}  // namespace rhocast
