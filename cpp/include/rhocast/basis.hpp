// Atom-centred Gaussian basis sets, as handed over from PySCF.
//
// Convention (METHOD.md section 2): a shell of angular momentum l contributes 2l+1 functions, m = -l..l,
//     phi_m(r) = sum_k coefficients[k] |r|^l exp(-exponents[k] |r|^2) Y_lm(r/|r|),
// with Y_lm the orthonormal real spherical harmonics (m > 0 ~ cos(m phi), m < 0 ~ sin(|m| phi),
// Condon-Shortley phase in the complex harmonics; m=+1 is +x, m=-1 is +y). The coefficients already
// contain every normalisation factor (PySCF's `mol._libcint_ctr_coeff`). Lengths are in Bohr.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace rhocast {

struct Shell {
    int l = 0;
    std::vector<double> exponents;     // Bohr^-2
    std::vector<double> coefficients;  // same length as exponents
};

// Shells of every element of a basis, in basis order (the canonical coefficient order is
// atom -> shell -> m).
class Basis {
public:
    Basis() = default;
    explicit Basis(std::map<int, std::vector<Shell>> shells) : shells_(std::move(shells)) {}

    const std::vector<Shell>& shells(int atomic_number) const {
        auto it = shells_.find(atomic_number);
        if (it == shells_.end()) {
            throw std::invalid_argument("the basis has no functions for atomic number " +
                                        std::to_string(atomic_number));
        }
        return it->second;
    }
    bool has_element(int atomic_number) const { return shells_.count(atomic_number) != 0; }
    int n_functions(int atomic_number) const {
        int n = 0;
        for (const auto& s : shells(atomic_number)) n += 2 * s.l + 1;
        return n;
    }
    int max_l() const {
        int lmax = 0;
        for (const auto& [z, shells] : shells_)
            for (const auto& s : shells) lmax = std::max(lmax, s.l);
        return lmax;
    }
    const std::map<int, std::vector<Shell>>& all_shells() const { return shells_; }

private:
    std::map<int, std::vector<Shell>> shells_;
};

}  // namespace rhocast
