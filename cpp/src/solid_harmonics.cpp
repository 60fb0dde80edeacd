#include "rhocast/solid_harmonics.hpp"

#include <cmath>

namespace rhocast {

double factorial(int n) {
    double f = 1.0;
    for (int k = 2; k <= n; ++k) f *= k;
    return f;
}

namespace {

double binomial(int n, int k) {
    if (k < 0 || k > n) return 0.0;
    return factorial(n) / (factorial(k) * factorial(n - k));
}

}  // namespace

std::vector<std::vector<CartesianTerm>> solid_harmonic_terms(int l) {
    std::vector<std::vector<CartesianTerm>> out(2 * l + 1);
    const double to_orthonormal = std::sqrt((2 * l + 1) / (4.0 * M_PI));
    for (int m = -l; m <= l; ++m) {
        const int am = std::abs(m);
        // Twice v: even for m >= 0 (cosine-like), odd for m < 0 (sine-like).
        const int v2_min = m >= 0 ? 0 : 1;
        const double norm = 1.0 / (std::pow(2.0, am) * factorial(l)) *
                            std::sqrt(2.0 * factorial(l + am) * factorial(l - am) / (m == 0 ? 2.0 : 1.0));
        std::vector<CartesianTerm> terms;
        for (int t = 0; t <= (l - am) / 2; ++t)
            for (int u = 0; u <= t; ++u)
                for (int v2 = v2_min; v2 <= am; v2 += 2) {
                    const int sign_power = t + (v2 - v2_min) / 2;
                    double c = (sign_power % 2 ? -1.0 : 1.0) * std::pow(0.25, t) * binomial(l, t) *
                               binomial(l - t, am + t) * binomial(t, u) * binomial(am, v2);
                    if (c == 0.0) continue;
                    std::array<int, 3> p{2 * t + am - 2 * u - v2, 2 * u + v2, l - 2 * t - am};
                    bool merged = false;
                    for (auto& term : terms)
                        if (term.powers == p) {
                            term.coefficient += c * norm * to_orthonormal;
                            merged = true;
                        }
                    if (!merged) terms.push_back({p, c * norm * to_orthonormal});
                }
        out[m + l] = terms;
    }
    return out;
}

std::vector<double> real_spherical_harmonics(int l, double x, double y, double z, bool solid) {
    double r = std::sqrt(x * x + y * y + z * z);
    if (!solid && r > 0) {
        x /= r;
        y /= r;
        z /= r;
    }
    std::vector<double> out(2 * l + 1, 0.0);
    const auto terms = solid_harmonic_terms(l);
    for (int k = 0; k < 2 * l + 1; ++k)
        for (const auto& t : terms[k])
            out[k] += t.coefficient * std::pow(x, t.powers[0]) * std::pow(y, t.powers[1]) *
                      std::pow(z, t.powers[2]);
    return out;
}

}  // namespace rhocast
