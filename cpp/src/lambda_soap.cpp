#include "rhocast/lambda_soap.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <stdexcept>
#include <string>

#include "rhocast/neighbors.hpp"
#include "rhocast/solid_harmonics.hpp"

namespace rhocast {

namespace {

// Complex Clebsch-Gordan coefficient <l1 m1 l2 m2 | L M> (Racah's formula).
double complex_cg(int l1, int m1, int l2, int m2, int L, int M) {
    if (m1 + m2 != M || std::abs(m1) > l1 || std::abs(m2) > l2 || std::abs(M) > L) return 0.0;
    if (L < std::abs(l1 - l2) || L > l1 + l2) return 0.0;
    double pref = std::sqrt((2 * L + 1) * factorial(L + l1 - l2) * factorial(L - l1 + l2) *
                            factorial(l1 + l2 - L) / factorial(l1 + l2 + L + 1));
    pref *= std::sqrt(factorial(L + M) * factorial(L - M) * factorial(l1 - m1) * factorial(l1 + m1) *
                      factorial(l2 - m2) * factorial(l2 + m2));
    double sum = 0.0;
    for (int k = 0; k <= l1 + l2 - L; ++k) {
        const int a = l1 + l2 - L - k, b = l1 - m1 - k, c = l2 + m2 - k, d = L - l2 + m1 + k, e = L - l1 - m2 + k;
        if (a < 0 || b < 0 || c < 0 || d < 0 || e < 0) continue;
        sum += (k % 2 ? -1.0 : 1.0) /
               (factorial(k) * factorial(a) * factorial(b) * factorial(c) * factorial(d) * factorial(e));
    }
    return pref * sum;
}

// U with Y_real = U Y_complex (METHOD.md section 2 conventions); index m + l.
Eigen::MatrixXcd real_from_complex(int l) {
    Eigen::MatrixXcd u = Eigen::MatrixXcd::Zero(2 * l + 1, 2 * l + 1);
    const double s = 1.0 / std::sqrt(2.0);
    const std::complex<double> i(0.0, 1.0);
    u(l, l) = 1.0;
    for (int m = 1; m <= l; ++m) {
        const double sign = m % 2 ? -1.0 : 1.0;
        u(m + l, m + l) = sign * s;       // cos-like
        u(m + l, -m + l) = s;
        u(-m + l, m + l) = sign * s / i;  // sin-like
        u(-m + l, -m + l) = -s / i;
    }
    return u;
}

// Modified spherical Bessel functions times exp(-x): k_l(x) = i_l(x) e^{-x}, l = 0..lmax.
void scaled_bessel_i(int lmax, double x, double* out) {
    if (x < 20.0) {
        // Power series, exact to rounding for these arguments.
        double xl = 1.0, dfact = 1.0;  // x^l, (2l+1)!!
        const double ex = std::exp(-x);
        for (int l = 0; l <= lmax; ++l) {
            if (l > 0) {
                xl *= x;
                dfact *= 2 * l + 1;
            }
            double term = 1.0, sum = 1.0;
            for (int k = 1; k < 200; ++k) {
                term *= 0.5 * x * x / (k * (2.0 * l + 2.0 * k + 1.0));
                sum += term;
                if (term < 1e-17 * sum) break;
            }
            out[l] = xl / dfact * sum * ex;
        }
        return;
    }
    const double e2 = std::exp(-2.0 * x);
    out[0] = (1.0 - e2) / (2.0 * x);
    if (lmax >= 1) out[1] = (1.0 + e2) / (2.0 * x) - (1.0 - e2) / (2.0 * x * x);
    for (int l = 1; l < lmax; ++l) out[l + 1] = out[l - 1] - (2.0 * l + 1.0) / x * out[l];
}

// Gauss-Legendre nodes and weights on [a, b].
void gauss_legendre(int n, double a, double b, std::vector<double>& x, std::vector<double>& w) {
    x.resize(n);
    w.resize(n);
    for (int i = 0; i < n; ++i) {
        double z = std::cos(M_PI * (i + 0.75) / (n + 0.5)), dp = 0.0;
        for (int it = 0; it < 100; ++it) {
            double p0 = 1.0, p1 = z;
            for (int k = 2; k <= n; ++k) {
                const double p2 = ((2.0 * k - 1.0) * z * p1 - (k - 1.0) * p0) / k;
                p0 = p1;
                p1 = p2;
            }
            dp = n * (z * p1 - p0) / (z * z - 1.0);
            const double dz = p1 / dp;
            z -= dz;
            if (std::abs(dz) < 1e-15) break;
        }
        x[i] = 0.5 * (b - a) * z + 0.5 * (b + a);
        w[i] = (b - a) / ((1.0 - z * z) * dp * dp);
    }
}

}  // namespace

std::vector<Eigen::MatrixXd> LambdaSoap::real_clebsch_gordan(int l1, int l2, int lambda) {
    const Eigen::MatrixXcd u1 = real_from_complex(l1), u2 = real_from_complex(l2), ul = real_from_complex(lambda);
    std::vector<Eigen::MatrixXd> out(2 * lambda + 1, Eigen::MatrixXd::Zero(2 * l1 + 1, 2 * l2 + 1));
    for (int mu = 0; mu < 2 * lambda + 1; ++mu)
        for (int m1 = 0; m1 < 2 * l1 + 1; ++m1)
            for (int m2 = 0; m2 < 2 * l2 + 1; ++m2) {
                std::complex<double> v = 0.0;
                for (int c1 = -l1; c1 <= l1; ++c1)
                    for (int c2 = -l2; c2 <= l2; ++c2) {
                        const int M = c1 + c2;
                        if (std::abs(M) > lambda) continue;
                        const double cg = complex_cg(l1, c1, l2, c2, lambda, M);
                        if (cg == 0.0) continue;
                        v += ul(mu, M + lambda) * cg * std::conj(u1(m1, c1 + l1)) * std::conj(u2(m2, c2 + l2));
                    }
                out[mu](m1, m2) = v.real();
            }
    return out;
}

LambdaSoap::LambdaSoap(LambdaSoapSettings settings) : settings_(std::move(settings)) {
    const auto& s = settings_;
    if (!(s.cutoff > 0) || s.max_radial < 1 || s.max_angular < 0 || s.max_lambda < 0 || !(s.atomic_width > 0) ||
        s.cutoff_width < 0 || s.cutoff_width > s.cutoff)
        throw std::invalid_argument("invalid lambda-SOAP hyper-parameters");
    if (s.species.empty()) throw std::invalid_argument("lambda-SOAP needs at least one species");
    species_index_.assign(119, -1);
    for (std::size_t k = 0; k < s.species.size(); ++k) {
        const int z = s.species[k];
        if (z < 1 || z > 118 || species_index_[z] >= 0) throw std::invalid_argument("invalid or repeated species");
        species_index_[z] = static_cast<int>(k);
    }
    tabulate_radial();
    for (int l = 0; l <= s.max_angular; ++l)
        for (auto& t : solid_harmonic_terms(l)) harmonics_.push_back(t);
    const int L = s.max_angular, Q = static_cast<int>(s.species.size()) * s.max_radial;
    pairs_.resize(s.max_lambda + 1);
    couplings_.resize(s.max_lambda + 1);
    for (int lam = 0; lam <= s.max_lambda; ++lam)
        for (int l1 = 0; l1 <= L; ++l1)
            for (int l2 = l1; l2 <= L; ++l2) {
                if (lam < l2 - l1 || lam > l1 + l2 || (l1 + l2 + lam) % 2) continue;
                Coupling c{l1, l2, {}, std::vector<int>(Q * Q, -1)};
                for (const Eigen::MatrixXd& cg : real_clebsch_gordan(l1, l2, lam)) {
                    c.cg.emplace_back();
                    for (int m1 = 0; m1 < 2 * l1 + 1; ++m1)
                        for (int m2 = 0; m2 < 2 * l2 + 1; ++m2)
                            if (cg(m1, m2) != 0.0) c.cg.back().push_back({m1, m2, cg(m1, m2)});
                }
                for (int q1 = 0; q1 < Q; ++q1)
                    for (int q2 = (l1 == l2 ? q1 : 0); q2 < Q; ++q2) {
                        c.feature_index[q1 * Q + q2] = static_cast<int>(pairs_[lam].size());
                        pairs_[lam].push_back({l1, l2, q1, q2, (l1 == l2 && q1 == q2) ? 1.0 : std::sqrt(2.0),
                                               static_cast<int>(couplings_[lam].size())});
                    }
                couplings_[lam].push_back(std::move(c));
            }
}

double LambdaSoap::cutoff_function(double r) const {
    const double rc = settings_.cutoff, w = settings_.cutoff_width;
    if (r >= rc) return 0.0;
    if (r <= rc - w || w == 0.0) return 1.0;
    return 0.5 * (1.0 + std::cos(M_PI * (r - rc + w) / w));
}

double LambdaSoap::cutoff_derivative(double r) const {
    const double rc = settings_.cutoff, w = settings_.cutoff_width;
    if (r >= rc || r <= rc - w || w == 0.0) return 0.0;
    return -0.5 * M_PI / w * std::sin(M_PI * (r - rc + w) / w);
}

void LambdaSoap::tabulate_radial() {
    const auto& s = settings_;
    const int N = s.max_radial, L = s.max_angular;
    const double rc = s.cutoff, sigma = s.atomic_width;
    // GTO radial basis r^n exp(-r^2 / (2 s_n^2)), orthonormalised (Loewdin) on [0, rc] with weight r^2.
    std::vector<double> x, w;
    gauss_legendre(400, 0.0, rc, x, w);
    Eigen::MatrixXd basis(x.size(), N);
    for (int n = 0; n < N; ++n) {
        const double sn = rc * std::max(std::sqrt(double(n)), 1.0) / N;
        for (std::size_t k = 0; k < x.size(); ++k) basis(k, n) = std::pow(x[k], n) * std::exp(-0.5 * x[k] * x[k] / (sn * sn));
    }
    Eigen::VectorXd wr2(x.size());
    for (std::size_t k = 0; k < x.size(); ++k) wr2[k] = w[k] * x[k] * x[k];
    const Eigen::MatrixXd overlap = basis.transpose() * wr2.asDiagonal() * basis;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(overlap);
    const Eigen::MatrixXd inv_sqrt =
        eig.eigenvectors() * eig.eigenvalues().cwiseInverse().cwiseSqrt().asDiagonal() * eig.eigenvectors().transpose();
    const Eigen::MatrixXd ortho = basis * inv_sqrt;  // orthonormal radial functions at the nodes

    // I_nl(d) = (2 pi sigma^2)^{-3/2} 4 pi int_0^rc r^2 R_n(r) exp(-(r^2+d^2)/(2 sigma^2)) i_l(r d / sigma^2) dr
    grid_size_ = 600;
    grid_step_ = rc / (grid_size_ - 1);
    const double norm = 4.0 * M_PI * std::pow(2.0 * M_PI * sigma * sigma, -1.5);
    spline_y_.assign(L + 1, Eigen::MatrixXd::Zero(grid_size_, N));
    std::vector<double> kl(L + 1);
    for (int g = 0; g < grid_size_; ++g) {
        const double d = g * grid_step_;
        for (std::size_t k = 0; k < x.size(); ++k) {
            const double r = x[k];
            scaled_bessel_i(L, r * d / (sigma * sigma), kl.data());
            const double gauss = std::exp(-0.5 * (r - d) * (r - d) / (sigma * sigma)) * wr2[k] * norm;
            for (int l = 0; l <= L; ++l) spline_y_[l].row(g) += gauss * kl[l] * ortho.row(k);
        }
    }
    // Natural cubic splines: second derivatives from the tridiagonal system.
    spline_d2_.assign(L + 1, Eigen::MatrixXd::Zero(grid_size_, N));
    for (int l = 0; l <= L; ++l)
        for (int n = 0; n < N; ++n) {
            std::vector<double> u(grid_size_, 0.0), y2(grid_size_, 0.0);
            const auto& y = spline_y_[l];
            for (int i = 1; i < grid_size_ - 1; ++i) {
                const double p = 0.5 * y2[i - 1] + 2.0;
                y2[i] = -0.5 / p;
                u[i] = (y(i + 1, n) - 2.0 * y(i, n) + y(i - 1, n)) / grid_step_;
                u[i] = (6.0 * u[i] / (2.0 * grid_step_) - 0.5 * u[i - 1]) / p;
            }
            for (int i = grid_size_ - 2; i >= 0; --i) y2[i] = y2[i] * y2[i + 1] + u[i];
            for (int i = 0; i < grid_size_; ++i) spline_d2_[l](i, n) = y2[i];
        }
}

Eigen::VectorXd LambdaSoap::radial_integrals(int l, double r) const {
    std::vector<double> all((settings_.max_angular + 1) * settings_.max_radial);
    radial_integrals_all(r, all.data());
    return Eigen::Map<const Eigen::VectorXd>(all.data() + l * settings_.max_radial, settings_.max_radial);
}

void LambdaSoap::radial_integrals_all(double r, double* out, double* derivative) const {
    const int N = settings_.max_radial, L = settings_.max_angular;
    if (r >= settings_.cutoff) {
        std::fill(out, out + (L + 1) * N, 0.0);
        if (derivative) std::fill(derivative, derivative + (L + 1) * N, 0.0);
        return;
    }
    int k = std::min(grid_size_ - 2, static_cast<int>(r / grid_step_));
    const double b = (r - k * grid_step_) / grid_step_, a = 1.0 - b;
    const double h2 = grid_step_ * grid_step_ / 6.0;
    const double ca = a * a * a - a, cb = b * b * b - b;
    // d/dr of a, b, ca, cb (da/dr = -1/h, db/dr = 1/h)
    const double da = -1.0 / grid_step_, db = 1.0 / grid_step_;
    const double dca = (3.0 * a * a - 1.0) * da, dcb = (3.0 * b * b - 1.0) * db;
    for (int l = 0; l <= L; ++l) {
        const Eigen::MatrixXd &y = spline_y_[l], &d2 = spline_d2_[l];
        for (int n = 0; n < N; ++n) {
            out[l * N + n] = a * y(k, n) + b * y(k + 1, n) + (ca * d2(k, n) + cb * d2(k + 1, n)) * h2;
            if (derivative)
                derivative[l * N + n] = da * y(k, n) + db * y(k + 1, n) + (dca * d2(k, n) + dcb * d2(k + 1, n)) * h2;
        }
    }
}

Neighborhoods LambdaSoap::neighborhoods(const std::vector<int>& numbers,
                                        const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                        const Eigen::Matrix3d* cell) const {
    const int n_atoms = static_cast<int>(numbers.size());
    if (positions.rows() != n_atoms) throw std::invalid_argument("numbers and positions differ in length");
    for (int z : numbers)
        if (z < 1 || z > 118 || species_index_[z] < 0)
            throw std::invalid_argument("atomic number " + std::to_string(z) +
                                        " is not among the species this lambda-SOAP was built for");
    Neighborhoods env{neighbor_list(positions, cell, settings_.cutoff), std::vector<int>(n_atoms + 1, 0)};
    for (const auto& p : env.pairs) ++env.first[p.i + 1];
    for (int i = 0; i < n_atoms; ++i) env.first[i + 1] += env.first[i];
    return env;
}

std::vector<Eigen::MatrixXd> LambdaSoap::expansion(int i, const std::vector<int>& numbers, const Neighborhoods& env,
                                                   std::vector<int>* atoms,
                                                   std::vector<std::vector<Eigen::MatrixXd>>* gradient) const {
    const auto& s = settings_;
    const int L = s.max_angular, N = s.max_radial, Q = static_cast<int>(s.species.size()) * N;
    std::vector<Eigen::MatrixXd> coef(L + 1);
    for (int l = 0; l <= L; ++l) coef[l] = Eigen::MatrixXd::Zero(Q, 2 * l + 1);
    const bool grad = atoms && gradient;
    // Column of each pair's neighbour in `atoms`: the centre is 0, the other atoms follow ascending.
    std::vector<int> column;
    if (grad) {
        *atoms = {i};
        for (int p = env.first[i]; p < env.first[i + 1]; ++p)
            if (env.pairs[p].j != i) atoms->push_back(env.pairs[p].j);
        std::sort(atoms->begin() + 1, atoms->end());
        atoms->erase(std::unique(atoms->begin() + 1, atoms->end()), atoms->end());
        for (int p = env.first[i]; p < env.first[i + 1]; ++p)
            column.push_back(static_cast<int>(std::lower_bound(atoms->begin() + 1, atoms->end(), env.pairs[p].j) -
                                              atoms->begin()));
        gradient->assign(3 * atoms->size(), coef);
    }
    const int n_harm = (L + 1) * (L + 1);
    std::vector<double> px(L + 1), py(L + 1), pz(L + 1), ylm(n_harm), rad((L + 1) * N), drad((L + 1) * N);
    std::vector<Eigen::Vector3d> dylm(n_harm);
    for (int p = env.first[i]; p < env.first[i + 1]; ++p) {
        const auto& pr = env.pairs[p];
        const double fc = cutoff_function(pr.distance);
        if (fc == 0.0) continue;
        const Eigen::Vector3d u = pr.vector / pr.distance;
        px[0] = py[0] = pz[0] = 1.0;
        for (int e = 1; e <= L; ++e) {
            px[e] = px[e - 1] * u.x();
            py[e] = py[e - 1] * u.y();
            pz[e] = pz[e - 1] * u.z();
        }
        for (std::size_t h = 0; h < harmonics_.size(); ++h) {
            double v = 0.0;
            for (const auto& t : harmonics_[h]) v += t.coefficient * px[t.powers[0]] * py[t.powers[1]] * pz[t.powers[2]];
            ylm[h] = v;
        }
        const int a = species_index_[numbers[pr.j]];
        // A self-image (j = i) moves with the centre: its vector, and so its term, does not depend on R_i.
        if (grad && pr.j != i) {
            radial_integrals_all(pr.distance, rad.data(), drad.data());
            // Y_lm(u) = S_lm(r) / |r|^l with S_lm homogeneous of degree l: dY/dr = (grad S(u) - l Y u) / |r|.
            for (int l = 0, h = 0; l <= L; ++l)
                for (int m = 0; m < 2 * l + 1; ++m, ++h) {
                    Eigen::Vector3d g = Eigen::Vector3d::Zero();
                    for (const auto& t : harmonics_[h]) {
                        const int ex = t.powers[0], ey = t.powers[1], ez = t.powers[2];
                        if (ex) g.x() += t.coefficient * ex * px[ex - 1] * py[ey] * pz[ez];
                        if (ey) g.y() += t.coefficient * ey * px[ex] * py[ey - 1] * pz[ez];
                        if (ez) g.z() += t.coefficient * ez * px[ex] * py[ey] * pz[ez - 1];
                    }
                    dylm[h] = (g - l * ylm[h] * u) / pr.distance;
                }
            const double dfc = cutoff_derivative(pr.distance);
            const int k = column[p - env.first[i]];
            for (int l = 0; l <= L; ++l)
                for (int m = 0; m < 2 * l + 1; ++m) {
                    const double y = ylm[l * l + m];
                    const Eigen::Vector3d& dy = dylm[l * l + m];
                    for (int n = 0; n < N; ++n) {
                        const double f = fc * rad[l * N + n];
                        // d (f Y) / d r_ij; r_ij = R_j - R_i + shift . cell
                        const Eigen::Vector3d g = (dfc * rad[l * N + n] + fc * drad[l * N + n]) * y * u + f * dy;
                        for (int x = 0; x < 3; ++x) {
                            (*gradient)[3 * k + x][l](a * N + n, m) += g[x];
                            (*gradient)[x][l](a * N + n, m) -= g[x];
                        }
                    }
                }
        } else {
            radial_integrals_all(pr.distance, rad.data());
        }
        for (int l = 0; l <= L; ++l)
            for (int m = 0; m < 2 * l + 1; ++m) {
                double* col = coef[l].col(m).data() + a * N;
                const double y = ylm[l * l + m];
                for (int n = 0; n < N; ++n) col[n] += (fc * rad[l * N + n]) * y;
            }
    }
    return coef;
}

double LambdaSoap::squared_norm(int lambda, const std::vector<Eigen::MatrixXd>& gram,
                                std::vector<Eigen::MatrixXd>* d_gram) const {
    // sum_{q1 q2} p(q1, q2)^2 = sum over pairs of C terms of C C' G_l1(m1, m1') G_l2(m2, m2'), counted twice
    // for l1 < l2 (the sqrt(2) weights make the stored norm the ordered one).
    if (d_gram) {
        d_gram->resize(gram.size());
        for (std::size_t l = 0; l < gram.size(); ++l) (*d_gram)[l] = Eigen::MatrixXd::Zero(gram[l].rows(), gram[l].cols());
    }
    double norm2 = 0.0;
    for (const auto& c : couplings_[lambda]) {
        const double factor = c.l1 == c.l2 ? 1.0 : 2.0;
        double sum = 0.0;
        for (const auto& terms : c.cg)
            for (const CgTerm& g : terms)
                for (const CgTerm& h : terms) {
                    const double gh = g.value * h.value;
                    sum += gh * gram[c.l1](g.m1, h.m1) * gram[c.l2](g.m2, h.m2);
                    if (d_gram) {
                        (*d_gram)[c.l1](g.m1, h.m1) += factor * gh * gram[c.l2](g.m2, h.m2);
                        (*d_gram)[c.l2](g.m2, h.m2) += factor * gh * gram[c.l1](g.m1, h.m1);
                    }
                }
        norm2 += factor * sum;
    }
    return norm2;
}

std::vector<Eigen::MatrixXd> LambdaSoap::center_features(int i, const std::vector<int>& numbers,
                                                         const Neighborhoods& env,
                                                         const ColumnSelection* selected,
                                                         const std::vector<bool>* lambdas) const {
    const auto& s = settings_;
    const int L = s.max_angular, N = s.max_radial, Q = static_cast<int>(s.species.size()) * N;
    if (lambdas && static_cast<int>(lambdas->size()) != s.max_lambda + 1)
        throw std::invalid_argument("center_features: `lambdas` needs one flag per lambda = 0.." +
                                    std::to_string(s.max_lambda));
    const std::vector<Eigen::MatrixXd> coef = expansion(i, numbers, env);
    // p(q1, q2) = sum_{m1 m2} C_{m1 m2} c1(q1, m1) c2(q2, m2) with the sparse C: t = c1 C (Q x (2 l2 + 1)),
    // then p = t c2^T, in plain loops (these matrices are too small for Eigen's GEMM to pay off).
    std::vector<double> t(Q * (2 * L + 1)), prod(Q * Q);
    std::vector<Eigen::MatrixXd> out(s.max_lambda + 1), gram;
    for (int lam = 0; lam <= s.max_lambda; ++lam) {
        if (lambdas && !(*lambdas)[lam]) {
            out[lam].resize(2 * lam + 1, 0);
            continue;
        }
        if (selected && !(*selected)[lam].empty()) {
            // Only the kept columns; the norm over all columns from the Gram matrices G_l = c_l^T c_l.
            if (gram.empty())
                for (int l = 0; l <= L; ++l) gram.push_back(coef[l].transpose() * coef[l]);
            const double nrm = std::sqrt(std::max(squared_norm(lam, gram), 0.0));
            const auto& cols = (*selected)[lam];
            Eigen::MatrixXd block(2 * lam + 1, cols.size());
            for (std::size_t k = 0; k < cols.size(); ++k) {
                const Pair& pr = pairs_[lam][cols[k]];
                const Coupling& c = couplings_[lam][pr.coupling];
                for (int mu = 0; mu < 2 * lam + 1; ++mu) {
                    double v = 0.0;
                    for (const CgTerm& g : c.cg[mu]) v += g.value * coef[c.l1](pr.q1, g.m1) * coef[c.l2](pr.q2, g.m2);
                    block(mu, k) = nrm > 0.0 ? pr.weight * v / nrm : pr.weight * v;
                }
            }
            out[lam] = std::move(block);
            continue;
        }
        Eigen::MatrixXd block(2 * lam + 1, n_features(lam));
        for (const auto& c : couplings_[lam]) {
            const int w2 = 2 * c.l2 + 1;
            const Eigen::MatrixXd &c1 = coef[c.l1], &c2 = coef[c.l2];
            for (int mu = 0; mu < 2 * lam + 1; ++mu) {
                std::fill(t.begin(), t.begin() + Q * w2, 0.0);
                for (const CgTerm& g : c.cg[mu]) {
                    const double* src = c1.col(g.m1).data();
                    double* dst = t.data() + g.m2 * Q;
                    for (int q = 0; q < Q; ++q) dst[q] += g.value * src[q];
                }
                std::fill(prod.begin(), prod.end(), 0.0);
                for (int m2 = 0; m2 < w2; ++m2) {
                    const double* tm = t.data() + m2 * Q;
                    for (int q2 = 0; q2 < Q; ++q2) {
                        const double v = c2(q2, m2);
                        double* pc = prod.data() + q2 * Q;  // column q2: p(., q2)
                        for (int q1 = 0; q1 < Q; ++q1) pc[q1] += tm[q1] * v;
                    }
                }
                for (int q1 = 0; q1 < Q; ++q1)
                    for (int q2 = (c.l1 == c.l2 ? q1 : 0); q2 < Q; ++q2) {
                        const int f = c.feature_index[q1 * Q + q2];
                        block(mu, f) = pairs_[lam][f].weight * prod[q2 * Q + q1];
                    }
            }
        }
        const double nrm = block.norm();
        if (nrm > 0.0) block /= nrm;
        out[lam] = std::move(block);
    }
    return out;
}

FeatureGradients LambdaSoap::center_feature_gradients(int i, const std::vector<int>& numbers, const Neighborhoods& env,
                                                      const ColumnSelection* selected) const {
    const auto& s = settings_;
    const int L = s.max_angular, N = s.max_radial;
    FeatureGradients out;
    std::vector<std::vector<Eigen::MatrixXd>> dcoef;
    const std::vector<Eigen::MatrixXd> coef = expansion(i, numbers, env, &out.atoms, &dcoef);
    const int n_dir = static_cast<int>(dcoef.size());
    // Moving a neighbour changes only its species' rows of the coefficients; moving the centre, every row.
    std::vector<int> channel(n_dir, -1);
    for (int d = 3; d < n_dir; ++d) channel[d] = species_index_[numbers[out.atoms[d / 3]]];
    std::vector<Eigen::MatrixXd> gram(L + 1), d_gram;
    for (int l = 0; l <= L; ++l) gram[l] = coef[l].transpose() * coef[l];
    Eigen::VectorXd dnorm2(n_dir), dv(n_dir);
    out.values.resize(s.max_lambda + 1);
    out.gradients.resize(s.max_lambda + 1);
    for (int lam = 0; lam <= s.max_lambda; ++lam) {
        std::vector<int> cols;
        if (selected && !(*selected)[lam].empty()) {
            cols = (*selected)[lam];
        } else {
            for (int f = 0; f < n_features(lam); ++f) cols.push_back(f);
        }
        const double norm2 = std::max(squared_norm(lam, gram, &d_gram), 0.0), nrm = std::sqrt(norm2);
        // d norm^2 / d coef_l = coef_l (A + A^T) with A = d norm^2 / d G_l, G_l = coef_l^T coef_l.
        std::vector<Eigen::MatrixXd> d_coef_norm(L + 1);
        for (int l = 0; l <= L; ++l) d_coef_norm[l] = coef[l] * (d_gram[l] + d_gram[l].transpose());
        for (int d = 0; d < n_dir; ++d) {
            dnorm2[d] = 0.0;
            for (int l = 0; l <= L; ++l) dnorm2[d] += d_coef_norm[l].cwiseProduct(dcoef[d][l]).sum();
        }
        const int width = 2 * lam + 1;
        Eigen::MatrixXd& values = out.values[lam];
        Eigen::MatrixXd& grad = out.gradients[lam];
        values.resize(width, cols.size());
        grad = Eigen::MatrixXd::Zero(width * static_cast<long>(cols.size()), n_dir);
        for (std::size_t k = 0; k < cols.size(); ++k) {
            const Pair& pr = pairs_[lam][cols[k]];
            const Coupling& c = couplings_[lam][pr.coupling];
            const int ch1 = pr.q1 / N, ch2 = pr.q2 / N;
            for (int mu = 0; mu < width; ++mu) {
                double v = 0.0;
                dv.setZero();
                for (const CgTerm& g : c.cg[mu]) {
                    const double c1 = coef[c.l1](pr.q1, g.m1), c2 = coef[c.l2](pr.q2, g.m2);
                    v += g.value * c1 * c2;
                    for (int d = 0; d < n_dir; ++d) {
                        if (channel[d] >= 0 && channel[d] != ch1 && channel[d] != ch2) continue;
                        dv[d] += g.value * (dcoef[d][c.l1](pr.q1, g.m1) * c2 + c1 * dcoef[d][c.l2](pr.q2, g.m2));
                    }
                }
                const long row = static_cast<long>(k) * width + mu;
                if (nrm > 0.0) {
                    // d (v / |p|) = dv / |p| - v d|p|^2 / (2 |p|^3)
                    values(mu, k) = pr.weight * v / nrm;
                    grad.row(row) = pr.weight * (dv / nrm - (v / (2.0 * norm2 * nrm)) * dnorm2).transpose();
                } else {
                    values(mu, k) = pr.weight * v;  // no neighbours: zero features, zero gradient
                }
            }
        }
    }
    return out;
}

std::vector<LambdaBlock> LambdaSoap::compute(const std::vector<int>& numbers,
                                             const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                             const Eigen::Matrix3d* cell, const std::vector<int>& centers_in) const {
    const Neighborhoods env = neighborhoods(numbers, positions, cell);
    const int n_atoms = static_cast<int>(numbers.size());
    std::vector<int> centers = centers_in;
    if (centers.empty())
        for (int i = 0; i < n_atoms; ++i) centers.push_back(i);
    for (int c : centers)
        if (c < 0 || c >= n_atoms) throw std::invalid_argument("center index out of range");
    std::vector<LambdaBlock> out(settings_.max_lambda + 1);
    for (int lam = 0; lam <= settings_.max_lambda; ++lam) {
        out[lam].lambda = lam;
        out[lam].data.assign(centers.size(), Eigen::MatrixXd());
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (long k = 0; k < static_cast<long>(centers.size()); ++k) {
        auto blocks = center_features(centers[k], numbers, env);
        for (int lam = 0; lam <= settings_.max_lambda; ++lam) out[lam].data[k] = std::move(blocks[lam]);
    }
    return out;
}

}  // namespace rhocast
