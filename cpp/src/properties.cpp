#include "rhocast/properties.hpp"

#include <map>
#include <stdexcept>

#include "rhocast/overlap.hpp"

namespace rhocast {

namespace {

Basis auxiliary_basis(const DensityPredictor& predictor) {
    std::map<int, std::vector<Shell>> shells;
    for (const auto& sm : predictor.model().species) shells[sm.atomic_number] = sm.shells;
    return Basis(std::move(shells));
}

// S^-1 b by Jacobi-preconditioned conjugate gradients to a relative residual of 1e-14.
Eigen::VectorXd solve_overlap(const BlockSparseMatrix& s, const Eigen::Ref<const Eigen::VectorXd>& b) {
    const Eigen::VectorXd inv_diag = s.diagonal().cwiseInverse();
    Eigen::VectorXd x = Eigen::VectorXd::Zero(b.size()), r = b, z = inv_diag.cwiseProduct(r), p = z;
    double rz = r.dot(z);
    for (int it = 0; it < 10 * b.size() + 100 && r.norm() > 1e-14 * b.norm(); ++it) {
        const Eigen::VectorXd sp = s.multiply(p);
        const double alpha = rz / p.dot(sp);
        x += alpha * p;
        r -= alpha * sp;
        z = inv_diag.cwiseProduct(r);
        const double rz_new = r.dot(z);
        p = z + (rz_new / rz) * p;
        rz = rz_new;
    }
    return x;
}

}  // namespace

Eigen::VectorXd with_electron_count(const DensityPredictor& predictor, const std::vector<int>& numbers,
                                    const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                    const Eigen::Ref<const Eigen::VectorXd>& c, double n_electrons) {
    const BlockSparseMatrix s = overlap_matrix(auxiliary_basis(predictor), numbers, positions, nullptr);
    const Eigen::VectorXd q = predictor.function_integrals(numbers);
    if (c.size() != q.size()) throw std::invalid_argument("coefficients do not match the structure");
    const Eigen::VectorXd x = solve_overlap(s, q);
    return c + x * ((n_electrons - q.dot(c)) / q.dot(x));
}

Eigen::Vector3d corrected_dipole(const DensityPredictor& predictor, const std::vector<int>& numbers,
                                 const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                 const Eigen::Ref<const Eigen::VectorXd>& c) {
    double n_electrons = 0.0;
    for (int z : numbers) n_electrons += z;
    return predictor.dipole(numbers, positions, with_electron_count(predictor, numbers, positions, c, n_electrons));
}

Eigen::MatrixXd corrected_dipole_derivatives(const DensityPredictor& predictor, const std::vector<int>& numbers,
                                             const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                             const Eigen::Ref<const Eigen::VectorXd>& c,
                                             const CoefficientGradients& gradients, double n_electrons) {
    const int n_atoms = static_cast<int>(numbers.size());
    if (static_cast<int>(gradients.first.size()) != n_atoms + 1 || static_cast<int>(gradients.blocks.size()) != n_atoms)
        throw std::invalid_argument("the coefficient gradients are not those of this structure");
    const Basis basis = auxiliary_basis(predictor);
    const BlockSparseMatrix s = overlap_matrix(basis, numbers, positions, nullptr);
    const Eigen::VectorXd q = predictor.function_integrals(numbers);
    if (c.size() != q.size()) throw std::invalid_argument("coefficients do not match the structure");
    const Eigen::MatrixXd m = predictor.moment_matrix(numbers, positions);  // 3 x n
    // c' = c + alpha x with x = S^-1 q, alpha = (N - q.c) / (q.x); mu = sum_b Z_b R_b - M c'. With
    // dx = -S^-1 dS x and dM c' = (electrons of c' on the moved atom) along the move:
    //   d mu = (Z_b - N_b(c')) e_y - (M - M x q^T / q.x) dc + alpha (S^-1 M^T - x (M x)^T / q.x)^T dS x.
    const Eigen::VectorXd x = solve_overlap(s, q);
    const double qx = q.dot(x), alpha = (n_electrons - q.dot(c)) / qx;
    const Eigen::VectorXd corrected = c + alpha * x;
    const Eigen::Vector3d mx = m * x;
    Eigen::MatrixXd w(q.size(), 3);
    for (int k = 0; k < 3; ++k) w.col(k) = solve_overlap(s, m.row(k).transpose()) - x * (mx[k] / qx);
    const Eigen::MatrixXd m_eff = m - mx * q.transpose() / qx;

    Eigen::MatrixXd apt = Eigen::MatrixXd::Zero(3, 3 * n_atoms);
    const Eigen::MatrixXd ds = overlap_gradient_contraction(basis, numbers, positions, w, x);  // (3 n) x 3
    int start = 0;
    for (int b = 0; b < n_atoms; ++b) {
        const int size = static_cast<int>(gradients.blocks[b].rows());
        const double charge = numbers[b] - q.segment(start, size).dot(corrected.segment(start, size));
        apt.middleCols(3 * b, 3) += charge * Eigen::Matrix3d::Identity() + alpha * ds.middleRows(3 * b, 3).transpose();
        // atom b's coefficients move with the atoms they depend on
        const Eigen::MatrixXd moved = m_eff.middleCols(start, size) * gradients.blocks[b];  // 3 x 3 n_dep
        for (int k = gradients.first[b]; k < gradients.first[b + 1]; ++k)
            apt.middleCols(3 * gradients.atoms[k], 3) -= moved.middleCols(3 * (k - gradients.first[b]), 3);
        start += size;
    }
    if (start != q.size()) throw std::invalid_argument("the coefficient gradients are not those of this structure");
    return apt;
}

}  // namespace rhocast
