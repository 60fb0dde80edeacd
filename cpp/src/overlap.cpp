#include "rhocast/overlap.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <mutex>
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

// Sparse Cartesian -> solid harmonic coefficients of one l: (m, Cartesian index, coefficient).
struct SolidTerm {
    int m, cart;
    double coef;
};

const std::vector<SolidTerm>& solid_terms(int l) {
    static const std::vector<std::vector<SolidTerm>> cache = [] {
        std::vector<std::vector<SolidTerm>> c;
        for (int k = 0; k <= 12; ++k) {
            const Eigen::MatrixXd& t = cart_to_solid(k);
            std::vector<SolidTerm> terms;
            for (int m = 0; m < t.rows(); ++m)
                for (int q = 0; q < t.cols(); ++q)
                    if (t(m, q) != 0.0) terms.push_back({m, q, t(m, q)});
            c.push_back(std::move(terms));
        }
        return c;
    }();
    return cache.at(l);
}

constexpr int kMaxL = 6;
constexpr int kMaxCart = (kMaxL + 1) * (kMaxL + 2) / 2;

// out(ma, mb) += sum_{ca cb} C_a(ma, ca) cart(ca, cb) C_b(mb, cb): a Cartesian block (row-major,
// n_cartesian(lb) columns) in real solid harmonics, out row-major with leading dimension ld.
void accumulate_solid(int la, int lb, const double* cart, double* out, int ld) {
    const int nb = n_cartesian(lb);
    double tmp[(2 * kMaxL + 1) * kMaxCart] = {};
    for (const auto& t : solid_terms(la))
        for (int q = 0; q < nb; ++q) tmp[t.m * nb + q] += t.coef * cart[t.cart * nb + q];
    const auto& tb = solid_terms(lb);
    for (int m = 0; m < 2 * la + 1; ++m)
        for (const auto& t : tb) out[m * ld + t.m] += t.coef * tmp[m * nb + t.cart];
}

// f(alpha, p, pref, P) for every pair of primitives of a and b: alpha the exponent of a's, p = alpha + beta,
// pref the two contraction coefficients times exp(-alpha beta |A - B|^2 / p) (pi / p)^{3/2} (nonzero only)
// and P the product centre.
template <class F>
void for_each_primitive_pair(const Shell& a, const Eigen::Vector3d& A, const Shell& b, const Eigen::Vector3d& B, F f) {
    const double r2 = (A - B).squaredNorm();
    for (std::size_t ka = 0; ka < a.exponents.size(); ++ka)
        for (std::size_t kb = 0; kb < b.exponents.size(); ++kb) {
            const double alpha = a.exponents[ka], beta = b.exponents[kb];
            const double p = alpha + beta;
            const double pref = a.coefficients[ka] * b.coefficients[kb] * std::exp(-alpha * beta / p * r2) *
                                (M_PI / p) * std::sqrt(M_PI / p);
            if (pref == 0.0) continue;
            f(alpha, p, pref, Eigen::Vector3d((alpha * A + beta * B) / p));
        }
}

// out(ma, mb) += <phi_a(r - A)|phi_b(r - B)>, out row-major with leading dimension ld. No allocation:
// this runs once per shell pair and image in the assembly's inner loop.
void accumulate_shell_overlap(const Shell& a, const Eigen::Vector3d& A, const Shell& b, const Eigen::Vector3d& B,
                              double* out, int ld) {
    const int la = a.l, lb = b.l;
    if (la > kMaxL || lb > kMaxL) throw std::invalid_argument("angular momentum above 6 in an overlap");
    const int na = n_cartesian(la), nb = n_cartesian(lb), w = lb + 1;
    double cart[kMaxCart * kMaxCart] = {};
    double sx[(kMaxL + 1) * (kMaxL + 1)], sy[(kMaxL + 1) * (kMaxL + 1)], sz[(kMaxL + 1) * (kMaxL + 1)];
    for_each_primitive_pair(a, A, b, B, [&](double, double p, double pref, const Eigen::Vector3d& P) {
        const Eigen::Vector3d pa = P - A, pb = P - B;
        overlap_1d(la, lb, pa.x(), pb.x(), 0.5 / p, sx);
        overlap_1d(la, lb, pa.y(), pb.y(), 0.5 / p, sy);
        overlap_1d(la, lb, pa.z(), pb.z(), 0.5 / p, sz);
        for (int ax = la; ax >= 0; --ax)
            for (int ay = la - ax; ay >= 0; --ay) {
                const int az = la - ax - ay;
                double* row = cart + cart_index(la, ax, ay) * nb;
                for (int bx = lb; bx >= 0; --bx) {
                    const double fx = pref * sx[ax * w + bx];
                    for (int by = lb - bx; by >= 0; --by)
                        row[cart_index(lb, bx, by)] += fx * sy[ay * w + by] * sz[az * w + lb - bx - by];
                }
            }
    });
    accumulate_solid(la, lb, cart, out, ld);
    (void)na;
}

// out[x](ma, mb) += d <phi_a(r - A)|phi_b(r - B)> / d A_x (d/dB is minus this: the overlap depends on A - B).
// A Cartesian primitive's derivative, d/dA_x x_A^i e^{-alpha x_A^2} = 2 alpha x_A^{i+1} e^.. - i x_A^{i-1} e^..,
// turns into overlaps of la + 1 and la - 1.
void accumulate_shell_overlap_gradient(const Shell& a, const Eigen::Vector3d& A, const Shell& b,
                                       const Eigen::Vector3d& B, double* const out[3], int ld) {
    const int la = a.l, lb = b.l;
    if (la > kMaxL || lb > kMaxL) throw std::invalid_argument("angular momentum above 6 in an overlap");
    const int nb = n_cartesian(lb), w = lb + 1;
    double cart[3][kMaxCart * kMaxCart] = {};
    double s1[3][(kMaxL + 2) * (kMaxL + 1)];
    for_each_primitive_pair(a, A, b, B, [&](double alpha, double p, double pref, const Eigen::Vector3d& P) {
        for (int x = 0; x < 3; ++x) overlap_1d(la + 1, lb, P[x] - A[x], P[x] - B[x], 0.5 / p, s1[x]);
        // 1D overlap and its A-derivative of power i (of A) against power j (of B), direction x
        auto value = [&](int x, int i, int j) { return s1[x][i * w + j]; };
        auto slope = [&](int x, int i, int j) {
            return 2.0 * alpha * s1[x][(i + 1) * w + j] - (i > 0 ? i * s1[x][(i - 1) * w + j] : 0.0);
        };
        for (int ax = la; ax >= 0; --ax)
            for (int ay = la - ax; ay >= 0; --ay) {
                const int az = la - ax - ay, row = cart_index(la, ax, ay) * nb;
                for (int bx = lb; bx >= 0; --bx)
                    for (int by = lb - bx; by >= 0; --by) {
                        const int bz = lb - bx - by, col = row + cart_index(lb, bx, by);
                        const double vx = value(0, ax, bx), vy = value(1, ay, by), vz = value(2, az, bz);
                        cart[0][col] += pref * slope(0, ax, bx) * vy * vz;
                        cart[1][col] += pref * vx * slope(1, ay, by) * vz;
                        cart[2][col] += pref * vx * vy * slope(2, az, bz);
                    }
            }
    });
    for (int x = 0; x < 3; ++x) accumulate_solid(la, lb, cart[x], out[x], ld);
}

// Shells of an element pair with the distance beyond which each shell pair is below tol.
struct PairScreen {
    std::vector<int> offset_a, offset_b;    // first function of each shell in the atom block
    std::vector<double> shell_cutoff;       // (n_shells_a x n_shells_b), Bohr
    double cutoff = 0.0;                    // the largest: beyond it the whole block is dropped
};

// The outermost distance where f(r) reaches tol: scanned inwards from r_max in steps of 1 Bohr, then
// bisected to 0.01 Bohr inside the last step (beyond its maximum a Gaussian overlap decays
// monotonically), plus a margin of 0.05 Bohr.
template <class F>
double outermost(F f, double r_max, double tol) {
    for (double r = r_max; r > 0.0; r -= 1.0) {
        if (f(r) < tol) continue;
        double lo = r, hi = r + 1.0;  // f(lo) >= tol > f(hi)
        while (hi - lo > 0.01) {
            const double mid = 0.5 * (lo + hi);
            (f(mid) >= tol ? lo : hi) = mid;
        }
        return hi + 0.05;
    }
    return 0.05;
}

double shell_pair_cutoff(const Shell& a, const Shell& b, double tol) {
    double a_min = 1e300, b_min = 1e300;
    for (double e : a.exponents) a_min = std::min(a_min, e);
    for (double e : b.exponents) b_min = std::min(b_min, e);
    const double mu = a_min * b_min / (a_min + b_min);
    // exp(-mu R^2) < tol * 1e-8 is negligible whatever the polynomial and contraction factors.
    const double r_max = std::sqrt(std::log(1e8 / tol) / mu);
    const int na = 2 * a.l + 1, nb = 2 * b.l + 1;
    std::vector<double> block(na * nb);
    auto norm_at = [&](double r) {
        std::fill(block.begin(), block.end(), 0.0);
        accumulate_shell_overlap(a, Eigen::Vector3d::Zero(), b, Eigen::Vector3d(0, 0, r), block.data(), nb);
        double s = 0.0;
        for (double v : block) s += v * v;
        return std::sqrt(s);
    };
    return outermost(norm_at, r_max, tol);
}

PairScreen compute_pair_screen(const Basis& basis, int za, int zb, double tol) {
    const auto& sa = basis.shells(za);
    const auto& sb = basis.shells(zb);
    PairScreen p;
    int o = 0;
    for (const auto& s : sa) { p.offset_a.push_back(o); o += 2 * s.l + 1; }
    o = 0;
    for (const auto& s : sb) { p.offset_b.push_back(o); o += 2 * s.l + 1; }
    // The Frobenius norm of a shell-pair block is rotation invariant and bounds its largest
    // element, so one axis suffices.
    for (const auto& a : sa)
        for (const auto& b : sb) {
            p.shell_cutoff.push_back(shell_pair_cutoff(a, b, tol));
            p.cutoff = std::max(p.cutoff, p.shell_cutoff.back());
        }
    return p;
}

// Screening radii depend on the shells and tol only: cached for the process (training computes the
// overlaps of thousands of structures with one basis), keyed by the shells' content.
PairScreen pair_screen(const Basis& basis, int za, int zb, double tol) {
    static std::mutex mutex;
    static std::map<std::vector<double>, PairScreen> cache;
    std::vector<double> key{tol};
    for (int z : {za, zb}) {
        key.push_back(-1.0);  // separator: shells of a, then of b
        for (const auto& sh : basis.shells(z)) {
            key.push_back(sh.l);
            key.insert(key.end(), sh.exponents.begin(), sh.exponents.end());
            key.insert(key.end(), sh.coefficients.begin(), sh.coefficients.end());
        }
    }
    {
        std::lock_guard<std::mutex> lock(mutex);
        auto it = cache.find(key);
        if (it != cache.end()) return it->second;
    }
    PairScreen p = compute_pair_screen(basis, za, zb, tol);
    std::lock_guard<std::mutex> lock(mutex);
    if (cache.size() > 10000) cache.clear();  // bound the memory of a long-running process
    return cache.emplace(std::move(key), std::move(p)).first->second;
}

// Adds the (A, B) atom-pair block to `out` (row-major, na x nb), shell pairs beyond their cutoff skipped.
void accumulate_atom_pair(const std::vector<Shell>& sa, const Eigen::Vector3d& A, const std::vector<Shell>& sb,
                          const Eigen::Vector3d& B, const PairScreen& screen, double* out, int nb) {
    const double r = (A - B).norm();
    for (std::size_t i = 0; i < sa.size(); ++i)
        for (std::size_t j = 0; j < sb.size(); ++j) {
            if (r >= screen.shell_cutoff[i * sb.size() + j]) continue;
            accumulate_shell_overlap(sa[i], A, sb[j], B, out + screen.offset_a[i] * nb + screen.offset_b[j], nb);
        }
}

}  // namespace

Eigen::MatrixXd shell_overlap(const Shell& a, const Eigen::Vector3d& A, const Shell& b,
                              const Eigen::Vector3d& B) {
    using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    RowMajor out = RowMajor::Zero(2 * a.l + 1, 2 * b.l + 1);
    accumulate_shell_overlap(a, A, b, B, out.data(), 2 * b.l + 1);
    return out;
}

std::array<Eigen::MatrixXd, 3> shell_overlap_gradient(const Shell& a, const Eigen::Vector3d& A, const Shell& b,
                                                      const Eigen::Vector3d& B) {
    using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    std::array<RowMajor, 3> g;
    for (auto& m : g) m = RowMajor::Zero(2 * a.l + 1, 2 * b.l + 1);
    double* const out[3] = {g[0].data(), g[1].data(), g[2].data()};
    accumulate_shell_overlap_gradient(a, A, b, B, out, 2 * b.l + 1);
    return {g[0], g[1], g[2]};
}

Eigen::MatrixXd overlap_gradient_contraction(const Basis& basis, const std::vector<int>& numbers,
                                             const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                             const Eigen::Ref<const Eigen::MatrixXd>& u,
                                             const Eigen::Ref<const Eigen::VectorXd>& v, double tol) {
    const int n = static_cast<int>(numbers.size());
    if (positions.rows() != n || positions.cols() != 3)
        throw std::invalid_argument("positions must have shape (n_atoms, 3)");
    std::vector<int> off(n + 1, 0);
    for (int i = 0; i < n; ++i) off[i + 1] = off[i] + basis.n_functions(numbers[i]);
    if (u.rows() != off[n] || v.size() != off[n])
        throw std::invalid_argument("u and v need one row per basis function of the structure");
    const long k = u.cols();
    std::vector<int> elements(numbers);
    std::sort(elements.begin(), elements.end());
    elements.erase(std::unique(elements.begin(), elements.end()), elements.end());
    std::map<std::pair<int, int>, PairScreen> screens;
    for (int za : elements)
        for (int zb : elements) screens[{za, zb}] = pair_screen(basis, za, zb, tol);
    // Pair (a, b), a < b, within the screening distance: t = d/dR_a (u_a^T S_ab v_b + u_b^T S_ba v_a); the
    // pair depends on R_a - R_b only, so it adds t to row a and -t to row b (a block of one atom is constant).
    std::vector<std::pair<int, int>> pairs;
    for (int a = 0; a < n; ++a)
        for (int b = a + 1; b < n; ++b)
            if ((positions.row(a) - positions.row(b)).norm() < screens.at({numbers[a], numbers[b]}).cutoff)
                pairs.emplace_back(a, b);
    std::vector<Eigen::MatrixXd> terms(pairs.size());
#pragma omp parallel for schedule(dynamic, 4)
    for (long p = 0; p < static_cast<long>(pairs.size()); ++p) {
        const auto [a, b] = pairs[p];
        const auto &sa = basis.shells(numbers[a]), &sb = basis.shells(numbers[b]);
        const PairScreen& screen = screens.at({numbers[a], numbers[b]});
        const Eigen::Vector3d A = positions.row(a).transpose(), B = positions.row(b).transpose();
        const double r = (A - B).norm();
        const int na = off[a + 1] - off[a], nb = off[b + 1] - off[b];
        using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
        std::array<RowMajor, 3> g;
        for (auto& m : g) m = RowMajor::Zero(na, nb);
        for (std::size_t i = 0; i < sa.size(); ++i)
            for (std::size_t j = 0; j < sb.size(); ++j) {
                if (r >= screen.shell_cutoff[i * sb.size() + j]) continue;
                const long at = screen.offset_a[i] * nb + screen.offset_b[j];
                double* const blocks[3] = {g[0].data() + at, g[1].data() + at, g[2].data() + at};
                accumulate_shell_overlap_gradient(sa[i], A, sb[j], B, blocks, nb);
            }
        terms[p].resize(3, k);
        for (int x = 0; x < 3; ++x)  // d S_ab / d R_a = g, S_ba = S_ab^T
            terms[p].row(x) = (u.middleRows(off[a], na).transpose() * (g[x] * v.segment(off[b], nb)) +
                               u.middleRows(off[b], nb).transpose() * (g[x].transpose() * v.segment(off[a], na)))
                                  .transpose();
    }
    Eigen::MatrixXd out = Eigen::MatrixXd::Zero(3 * n, k);
    for (std::size_t p = 0; p < pairs.size(); ++p) {
        out.middleRows(3 * pairs[p].first, 3) += terms[p];
        out.middleRows(3 * pairs[p].second, 3) -= terms[p];
    }
    return out;
}

double screening_distance(const Basis& basis, int za, int zb, double tol) {
    return pair_screen(basis, za, zb, tol).cutoff;
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
    std::map<std::pair<int, int>, PairScreen> screens;
    double r_cut_max = 0.0;
    for (int za : numbers)
        for (int zb : numbers) {
            const std::pair<int, int> key{za, zb};
            if (!screens.count(key)) {
                screens[key] = pair_screen(basis, za, zb, tol);
                r_cut_max = std::max(r_cut_max, screens[key].cutoff);
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
            const double rc = screens[{numbers[i], numbers[j]}].cutoff;
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
        // The (j, i) block in row-major order is the (i, j) block in Eigen's column-major order:
        // computing it that way fills the stored block directly.
        const PairScreen& screen = screens.at({numbers[t.j], numbers[t.i]});
        Eigen::MatrixXd b = Eigen::MatrixXd::Zero(sizes[t.i], sizes[t.j]);
        for (int img : t.images)
            accumulate_atom_pair(basis.shells(numbers[t.j]), positions.row(t.j).transpose() + images[img],
                                 basis.shells(numbers[t.i]), A, screen, b.data(), sizes[t.i]);
        // Diagonal blocks are symmetric up to rounding; make them exactly so.
        if (t.i == t.j) b = (0.5 * (b + b.transpose())).eval();
        blocks[k] = std::move(b);
    }
    BlockSparseMatrix s(sizes);
    for (std::size_t k = 0; k < tasks.size(); ++k) s.add_block(tasks[k].i, tasks[k].j, std::move(blocks[k]));
    return s;
}

}  // namespace rhocast
