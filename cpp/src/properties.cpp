#include "rhocast/properties.hpp"

#include <map>
#include <stdexcept>

#include "rhocast/overlap.hpp"

namespace rhocast {

Eigen::VectorXd with_electron_count(const DensityPredictor& predictor, const std::vector<int>& numbers,
                                    const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                    const Eigen::Ref<const Eigen::VectorXd>& c, double n_electrons) {
    std::map<int, std::vector<Shell>> shells;
    for (const auto& sm : predictor.model().species) shells[sm.atomic_number] = sm.shells;
    const BlockSparseMatrix s = overlap_matrix(Basis(std::move(shells)), numbers, positions, nullptr);
    const Eigen::VectorXd q = predictor.function_integrals(numbers);
    if (c.size() != q.size()) throw std::invalid_argument("coefficients do not match the structure");
    const Eigen::VectorXd inv_diag = s.diagonal().cwiseInverse();
    Eigen::VectorXd x = Eigen::VectorXd::Zero(q.size()), r = q, z = inv_diag.cwiseProduct(r), p = z;
    double rz = r.dot(z);
    for (int it = 0; it < 10 * q.size() + 100 && r.norm() > 1e-14 * q.norm(); ++it) {
        const Eigen::VectorXd sp = s.multiply(p);
        const double alpha = rz / p.dot(sp);
        x += alpha * p;
        r -= alpha * sp;
        z = inv_diag.cwiseProduct(r);
        const double rz_new = r.dot(z);
        p = z + (rz_new / rz) * p;
        rz = rz_new;
    }
    return c + x * ((n_electrons - q.dot(c)) / q.dot(x));
}

Eigen::Vector3d corrected_dipole(const DensityPredictor& predictor, const std::vector<int>& numbers,
                                 const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                 const Eigen::Ref<const Eigen::VectorXd>& c) {
    double n_electrons = 0.0;
    for (int z : numbers) n_electrons += z;
    return predictor.dipole(numbers, positions, with_electron_count(predictor, numbers, positions, c, n_electrons));
}

}  // namespace rhocast
