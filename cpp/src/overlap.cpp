#include "rhocast/overlap.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <utility>

#include "rhocast/solid_harmonics.hpp"

namespace rhocast {

namespace {

// Cartesian -> solid harmonic matrix, (2l+1) x n_cart, with Cartesian components indexed by
// cart_index(l, px, py).
int n_cartesian(int l) { return (l + 1) * (l + 2) / 2; }

int cart_index(int l, int px, int py) {
    // Order: px descending, then py descending (pz implied).
    const int a = l - px;  // py + pz
    return a * (a + 1) / 2 + (a - py);
}

const Eigen::MatrixXd& cart_to_solid(int l) {
    static std::vector<Eigen::MatrixXd> cache = [] {
        std::vector<Eigen::MatrixXd> c;
        for (int k = 0; k <= 12; ++k) {
            Eigen::MatrixXd t = Eigen::MatrixXd::Zero(2 * k + 1, n_cartesian(k));
            auto terms = solid_harmonic_terms(k);
            for (int m = 0; m < 2 * k + 1; ++m)
                for (const auto& term : terms[m])
                    t(m, cart_index(k, term.powers[0], term.powers[1])) += term.coefficient;
            c.push_back(t);
        }
        return c;
    }();
    if (l >= static_cast<int>(cache.size())) throw std::invalid_argument("angular momentum too high");
    return cache[l];
}

// 1D Obara-Saika overlap table S[i][j], i <= la, j <= lb (without the exp and sqrt(pi/p) prefactor).
void overlap_1d(int la, int lb, double pa, double pb, double one_over_2p, double* s /* (la+1)(lb+1) */) {
    const int w = lb + 1;
    s[0] = 1.0;
    for (int i = 0; i <= la; ++i) {
        if (i > 0) {
            // S(i, 0) = PA S(i-1, 0) + (i-1)/(2p) S(i-2, 0)
            s[i * w] = pa * s[(i - 1) * w] + (i > 1 ? (i - 1) * one_over_2p * s[(i - 2) * w] : 0.0);
        }
        for (int j = 1; j <= lb; ++j) {
            double v = pb * s[i * w + j - 1];
            if (i > 0) v += i * one_over_2p * s[(i - 1) * w + j - 1];
            if (j > 1) v += (j - 1) * one_over_2p * s[i * w + j - 2];
            s[i * w + j] = v;
        }
    }
}

}  // namespace

Eigen::MatrixXd shell_overlap(const Shell& a, const Eigen::Vector3d& A, const Shell& b,
                              const Eigen::Vector3d& B) {
    const int la = a.l, lb = b.l;
    const int na = n_cartesian(la), nb = n_cartesian(lb);
    Eigen::MatrixXd cart = Eigen::MatrixXd::Zero(na, nb);
    const Eigen::Vector3d ab = A - B;
    const double r2 = ab.squaredNorm();
    std::vector<double> sx((la + 1) * (lb + 1)), sy(sx.size()), sz(sx.size());
    for (std::size_t ka = 0; ka < a.exponents.size(); ++ka)
        for (std::size_t kb = 0; kb < b.exponents.size(); ++kb) {
            const double alpha = a.exponents[ka], beta = b.exponents[kb];
            const double p = alpha + beta;
            const double pref = a.coefficients[ka] * b.coefficients[kb] * std::exp(-alpha * beta / p * r2) *
                                std::pow(M_PI / p, 1.5);
            if (pref == 0.0) continue;
            const Eigen::Vector3d P = (alpha * A + beta * B) / p;
            const Eigen::Vector3d pa = P - A, pb = P - B;
            overlap_1d(la, lb, pa.x(), pb.x(), 0.5 / p, sx.data());
            overlap_1d(la, lb, pa.y(), pb.y(), 0.5 / p, sy.data());
            overlap_1d(la, lb, pa.z(), pb.z(), 0.5 / p, sz.data());
            const int w = lb + 1;
            for (int ax = la; ax >= 0; --ax)
                for (int ay = la - ax; ay >= 0; --ay) {
                    const int az = la - ax - ay;
                    const int ia = cart_index(la, ax, ay);
                    for (int bx = lb; bx >= 0; --bx)
                        for (int by = lb - bx; by >= 0; --by) {
                            const int bz = lb - bx - by;
                            cart(ia, cart_index(lb, bx, by)) +=
                                pref * sx[ax * w + bx] * sy[ay * w + by] * sz[az * w + bz];
                        }
                }
        }
    return cart_to_solid(la) * cart * cart_to_solid(lb).transpose();
}

namespace {

Eigen::MatrixXd atom_pair_block(const std::vector<Shell>& sa, const Eigen::Vector3d& A,
                                const std::vector<Shell>& sb, const Eigen::Vector3d& B, int na, int nb) {
    Eigen::MatrixXd block(na, nb);
    int oa = 0;
    for (const auto& a : sa) {
        int ob = 0;
        for (const auto& b : sb) {
            block.block(oa, ob, 2 * a.l + 1, 2 * b.l + 1) = shell_overlap(a, A, b, B);
            ob += 2 * b.l + 1;
        }
        oa += 2 * a.l + 1;
    }
    return block;
}

}  // namespace

double screening_distance(const Basis& basis, int za, int zb, double tol) {
    const auto& sa = basis.shells(za);
    const auto& sb = basis.shells(zb);
    const int na = basis.n_functions(za), nb = basis.n_functions(zb);
    // Start where even the most diffuse primitive pair is negligible: exp(-mu R^2) < tol * 1e-8
    // (mu = a b / (a + b) of the smallest exponents; 1e8 is a generous bound on the polynomial and
    // contraction factors). Scan inwards coarsely, then refine: the cutoff is just past the
    // outermost distance where the block norm reaches tol.
    double a_min = 1e300, b_min = 1e300;
    for (const auto& s : sa) for (double e : s.exponents) a_min = std::min(a_min, e);
    for (const auto& s : sb) for (double e : s.exponents) b_min = std::min(b_min, e);
    const double mu = a_min * b_min / (a_min + b_min);
    const double r_max = std::sqrt(std::log(1e8 / tol) / mu);
    auto norm_at = [&](double r) {
        return atom_pair_block(sa, Eigen::Vector3d::Zero(), sb, Eigen::Vector3d(0, 0, r), na, nb).norm();
    };
    for (double r = r_max; r > 0.0; r -= 1.0) {
        if (norm_at(r) < tol) continue;
        for (double q = r + 1.0; q > r; q -= 0.05)
            if (norm_at(q) >= tol) return q + 0.05;
        return r + 0.05;
    }
    return 1.0;
}

BlockSparseMatrix overlap_matrix(const Basis& basis, const std::vector<int>& numbers,
                                 const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                 const Eigen::Matrix3d* cell, double tol) {
    const int n = static_cast<int>(numbers.size());
    if (positions.rows() != n || positions.cols() != 3)
        throw std::invalid_argument("positions must have shape (n_atoms, 3)");
    std::vector<int> sizes(n);
    for (int i = 0; i < n; ++i) sizes[i] = basis.n_functions(numbers[i]);

    // Screening radii per element pair, decided from the basis before any block is computed.
    std::map<std::pair<int, int>, double> cutoff;
    double r_cut_max = 0.0;
    for (int za : numbers)
        for (int zb : numbers) {
            auto key = std::minmax(za, zb);
            if (!cutoff.count(key)) {
                cutoff[key] = screening_distance(basis, key.first, key.second, tol);
                r_cut_max = std::max(r_cut_max, cutoff[key]);
            }
        }

    // Lattice translations that can contribute: |n_k| <= r_cut / (interplanar spacing of k).
    std::vector<Eigen::Vector3d> images{Eigen::Vector3d::Zero()};
    if (cell) {
        if (std::abs(cell->determinant()) < 1e-12) throw std::invalid_argument("the cell is singular");
        const Eigen::Matrix3d recip = cell->inverse();  // columns: reciprocal vectors / 2pi
        // Atoms may sit anywhere in (or near) the cell: their separation adds up to the sum of the
        // lattice vectors' lengths to the reach of the images.
        const double reach = r_cut_max + (cell->row(0).norm() + cell->row(1).norm() + cell->row(2).norm());
        int nmax[3];
        for (int k = 0; k < 3; ++k) nmax[k] = static_cast<int>(std::ceil(reach * recip.col(k).norm()));
        images.clear();
        for (int a = -nmax[0]; a <= nmax[0]; ++a)
            for (int b = -nmax[1]; b <= nmax[1]; ++b)
                for (int c = -nmax[2]; c <= nmax[2]; ++c)
                    images.push_back(a * cell->row(0).transpose() + b * cell->row(1).transpose() +
                                     c * cell->row(2).transpose());
    }

    struct Task {
        int i, j;
        std::vector<int> images;
    };
    std::vector<Task> tasks;
    for (int i = 0; i < n; ++i)
        for (int j = i; j < n; ++j) {
            const double rc = cutoff[std::minmax(numbers[i], numbers[j])];
            const Eigen::Vector3d d = positions.row(j).transpose() - positions.row(i).transpose();
            Task t{i, j, {}};
            for (int k = 0; k < static_cast<int>(images.size()); ++k)
                if ((d + images[k]).norm() < rc) t.images.push_back(k);
            if (!t.images.empty()) tasks.push_back(std::move(t));
        }

    std::vector<Eigen::MatrixXd> blocks(tasks.size());
#pragma omp parallel for schedule(dynamic, 8)
    for (long k = 0; k < static_cast<long>(tasks.size()); ++k) {
        const auto& t = tasks[k];
        const Eigen::Vector3d A = positions.row(t.i).transpose();
        Eigen::MatrixXd b = Eigen::MatrixXd::Zero(sizes[t.i], sizes[t.j]);
        for (int img : t.images)
            b += atom_pair_block(basis.shells(numbers[t.i]), A, basis.shells(numbers[t.j]),
                                 positions.row(t.j).transpose() + images[img], sizes[t.i], sizes[t.j]);
        // Diagonal blocks are symmetric up to rounding; make them exactly so.
        if (t.i == t.j) b = (0.5 * (b + b.transpose())).eval();
        blocks[k] = std::move(b);
    }
    BlockSparseMatrix s(sizes);
    for (std::size_t k = 0; k < tasks.size(); ++k) s.add_block(tasks[k].i, tasks[k].j, blocks[k]);
    return s;
}

}  // namespace rhocast
