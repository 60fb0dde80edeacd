#include "rhocast/properties.hpp"

#include <Eigen/SparseCholesky>
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

// S^-1 b for several b: S assembled from its atom-pair blocks into an Eigen sparse matrix and factorised
// once (sparse LDL^T, AMD ordering), the direct solve Python does by splu. Jacobi-preconditioned conjugate
// gradients took thousands of iterations on the ill-conditioned auxiliary-basis overlap (30 s for the
// four solves of the polar tensors of ten waters).
class OverlapSolver {
public:
    explicit OverlapSolver(const BlockSparseMatrix& s) {
        std::vector<Eigen::Triplet<double>> entries;
        const auto& off = s.offsets();
        for (const auto& e : s.entries())
            for (long r = 0; r < e.data.rows(); ++r)
                for (long c = 0; c < e.data.cols(); ++c) {
                    entries.emplace_back(off[e.i] + r, off[e.j] + c, e.data(r, c));
                    if (e.i != e.j) entries.emplace_back(off[e.j] + c, off[e.i] + r, e.data(r, c));
                }
        Eigen::SparseMatrix<double> a(s.rows(), s.rows());
        a.setFromTriplets(entries.begin(), entries.end());
        ldlt_.compute(a);
        if (ldlt_.info() != Eigen::Success)
            throw std::runtime_error("the overlap matrix of the auxiliary basis could not be factorised");
    }
    Eigen::VectorXd solve(const Eigen::Ref<const Eigen::VectorXd>& b) const { return ldlt_.solve(Eigen::VectorXd(b)); }

private:
    Eigen::SimplicialLDLT<Eigen::SparseMatrix<double>> ldlt_;
};

}  // namespace

Eigen::VectorXd with_electron_count(const DensityPredictor& predictor, const std::vector<int>& numbers,
                                    const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                    const Eigen::Ref<const Eigen::VectorXd>& c, double n_electrons) {
    const BlockSparseMatrix s = overlap_matrix(auxiliary_basis(predictor), numbers, positions, nullptr);
    const Eigen::VectorXd q = predictor.function_integrals(numbers);
    if (c.size() != q.size()) throw std::invalid_argument("coefficients do not match the structure");
    const Eigen::VectorXd x = OverlapSolver(s).solve(q);
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
    const OverlapSolver solver(s);
    const Eigen::VectorXd x = solver.solve(q);
    const double qx = q.dot(x), alpha = (n_electrons - q.dot(c)) / qx;
    const Eigen::VectorXd corrected = c + alpha * x;
    const Eigen::Vector3d mx = m * x;
    Eigen::MatrixXd w(q.size(), 3);
    for (int k = 0; k < 3; ++k) w.col(k) = solver.solve(m.row(k).transpose()) - x * (mx[k] / qx);
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
