#include "rhocast/collocation.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "rhocast/solid_harmonics.hpp"

namespace rhocast {

namespace {

constexpr int kMaxL = 8;

const std::vector<CartesianTerm>& harmonic_terms(int l, int m_index) {
    static const std::vector<std::vector<std::vector<CartesianTerm>>> cache = [] {
        std::vector<std::vector<std::vector<CartesianTerm>>> c;
        for (int k = 0; k <= kMaxL; ++k) c.push_back(solid_harmonic_terms(k));
        return c;
    }();
    return cache[l][m_index];
}

// One shell of one atom with its place in the canonical coefficient vector.
struct ShellTask {
    const Shell* shell;
    Eigen::Vector3d centre;
    int offset;
    double radius;
};

std::vector<ShellTask> shell_tasks(const Basis& basis, const std::vector<int>& numbers,
                                   const Eigen::Ref<const Eigen::MatrixXd>& positions, double tol, int deriv,
                                   int* n_functions) {
    if (positions.rows() != static_cast<Eigen::Index>(numbers.size()) || positions.cols() != 3)
        throw std::invalid_argument("positions must have shape (n_atoms, 3)");
    std::vector<ShellTask> tasks;
    int offset = 0;
    for (std::size_t a = 0; a < numbers.size(); ++a)
        for (const Shell& s : basis.shells(numbers[a])) {
            if (s.l > kMaxL) throw std::invalid_argument("angular momentum above 8 on a grid");
            tasks.push_back({&s, positions.row(a).transpose(), offset, shell_radius(s, tol, deriv)});
            offset += 2 * s.l + 1;
        }
    *n_functions = offset;
    return tasks;
}

// Calls visit(g, x, y, z) for every grid point (of every lattice image) within `radius` of `centre`,
// with (x, y, z) = r_g + T - centre. For each row (i, j) the k range is the exact chord of the sphere.
template <class Visit>
void for_each_point(const Eigen::Vector3d& centre, double radius, const Eigen::Matrix3d& cell,
                    const Eigen::Matrix3d& inverse, const std::array<int, 3>& mesh, Visit&& visit) {
    const Eigen::Vector3d frac = inverse.transpose() * centre;  // centre = sum_d frac_d a_d
    int lo[2], hi[2];
    for (int d = 0; d < 2; ++d) {
        const double extent = radius * inverse.col(d).norm();
        lo[d] = static_cast<int>(std::ceil((frac[d] - extent) * mesh[d]));
        hi[d] = static_cast<int>(std::floor((frac[d] + extent) * mesh[d]));
    }
    const Eigen::Vector3d step0 = cell.row(0).transpose() / mesh[0], step1 = cell.row(1).transpose() / mesh[1];
    const Eigen::Vector3d a2 = cell.row(2).transpose();
    const double a2a2 = a2.squaredNorm(), r2max = radius * radius;
    const int n0 = mesh[0], n1 = mesh[1], n2 = mesh[2];
    for (int i = lo[0]; i <= hi[0]; ++i) {
        const int gi = ((i % n0) + n0) % n0;
        for (int j = lo[1]; j <= hi[1]; ++j) {
            const Eigen::Vector3d base = i * step0 + j * step1 - centre;
            // |base + t a2|^2 <= R^2: t in [t_lo, t_hi]
            const double b = base.dot(a2), disc = b * b - a2a2 * (base.squaredNorm() - r2max);
            if (disc < 0) continue;
            const double root = std::sqrt(disc);
            const int k_lo = static_cast<int>(std::ceil((-b - root) / a2a2 * n2));
            const int k_hi = static_cast<int>(std::floor((-b + root) / a2a2 * n2));
            const Eigen::Index gij = (static_cast<Eigen::Index>(gi) * n1 + ((j % n1) + n1) % n1) * n2;
            for (int k = k_lo; k <= k_hi; ++k) {
                const Eigen::Vector3d d = base + (static_cast<double>(k) / n2) * a2;
                visit(gij + ((k % n2) + n2) % n2, d.x(), d.y(), d.z());
            }
        }
    }
}

// phi_m (m = -l..l) of a shell at displacement (x, y, z) into val[m]; with grad, d/dx, d/dy, d/dz into
// grad[3 m + c].
// The contracted radial part R(r^2) = sum_k d_k exp(-a_k r^2) of a shell and dR/d(r^2).
inline void radial_part(const Shell& s, double r2, double* radial, double* dradial) {
    double r = 0.0, dr = 0.0;
    for (std::size_t k = 0; k < s.exponents.size(); ++k) {
        const double e = s.coefficients[k] * std::exp(-s.exponents[k] * r2);
        r += e;
        dr -= s.exponents[k] * e;
    }
    *radial = r;
    *dradial = dr;
}

// x^p, y^p, z^p for p = 0..l.
inline void cartesian_powers(int l, double x, double y, double z, double* px, double* py, double* pz) {
    px[0] = py[0] = pz[0] = 1.0;
    for (int p = 1; p <= l; ++p) {
        px[p] = px[p - 1] * x;
        py[p] = py[p - 1] * y;
        pz[p] = pz[p - 1] * z;
    }
}

// p[0] = sum_t c_t x^a y^b z^c over `terms` and, with grad, p[1..3] its derivatives d/dx, d/dy, d/dz,
// from the powers px[a] = x^a, ...
inline void polynomial(const std::vector<CartesianTerm>& terms, const double* px, const double* py, const double* pz,
                       bool grad, double* p) {
    p[0] = p[1] = p[2] = p[3] = 0.0;
    for (const CartesianTerm& t : terms) {
        const int a = t.powers[0], b = t.powers[1], c = t.powers[2];
        p[0] += t.coefficient * px[a] * py[b] * pz[c];
        if (grad) {
            if (a) p[1] += t.coefficient * a * px[a - 1] * py[b] * pz[c];
            if (b) p[2] += t.coefficient * b * px[a] * py[b - 1] * pz[c];
            if (c) p[3] += t.coefficient * c * px[a] * py[b] * pz[c - 1];
        }
    }
}

void evaluate_shell(const Shell& s, double x, double y, double z, double* val, double* grad) {
    const int l = s.l;
    double radial, dradial;  // R(r^2) and dR/d(r^2)
    radial_part(s, x * x + y * y + z * z, &radial, &dradial);
    double px[kMaxL + 1], py[kMaxL + 1], pz[kMaxL + 1], p[4];
    cartesian_powers(l, x, y, z, px, py, pz);
    for (int m = 0; m < 2 * l + 1; ++m) {
        polynomial(harmonic_terms(l, m), px, py, pz, grad != nullptr, p);
        val[m] = radial * p[0];
        if (grad) {  // grad (R P) = 2 r dR/d(r^2) P + R grad P
            grad[3 * m] = 2 * x * dradial * p[0] + radial * p[1];
            grad[3 * m + 1] = 2 * y * dradial * p[0] + radial * p[2];
            grad[3 * m + 2] = 2 * z * dradial * p[0] + radial * p[3];
        }
    }
}

// sum_m c_m phi_m of one shell as R(r^2) P(x, y, z): the solid harmonics contracted with the shell's
// coefficients into one polynomial of degree l, (l + 1)(l + 2) / 2 monomials at most, so a point costs
// one polynomial instead of 2l + 1 of them. `radius`: where |c|_1 max|phi_m| falls below tol.
struct ContractedShell {
    const Shell* shell;
    double radius;
    std::vector<CartesianTerm> polynomial;
};

// The contracted shells of one atom: a point's displacement and powers are computed once for all of them.
struct ContractedAtom {
    Eigen::Vector3d centre;
    double radius = 0.0;  // the largest of its shells'
    int max_l = 0;
    std::vector<ContractedShell> shells;
};

std::vector<ContractedAtom> contracted_atoms(const Basis& basis, const std::vector<int>& numbers,
                                             const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                             const Eigen::Ref<const Eigen::VectorXd>& coefficients, double tol,
                                             int deriv) {
    if (positions.rows() != static_cast<Eigen::Index>(numbers.size()) || positions.cols() != 3)
        throw std::invalid_argument("positions must have shape (n_atoms, 3)");
    std::vector<ContractedAtom> atoms;
    Eigen::Index offset = 0;
    for (std::size_t a = 0; a < numbers.size(); ++a) {
        ContractedAtom atom;
        atom.centre = positions.row(a).transpose();
        for (const Shell& s : basis.shells(numbers[a])) {
            const int l = s.l, nm = 2 * l + 1;
            if (l > kMaxL) throw std::invalid_argument("angular momentum above 8 on a grid");
            if (offset + nm > coefficients.size())
                throw std::invalid_argument("coefficients do not match the basis on these atoms");
            const double* c = coefficients.data() + offset;
            offset += nm;
            double norm1 = 0.0;
            for (int m = 0; m < nm; ++m) norm1 += std::abs(c[m]);
            if (norm1 == 0.0) continue;
            std::vector<double> monomial((l + 1) * (l + 1), 0.0);  // index a (l + 1) + b, z power l - a - b
            for (int m = 0; m < nm; ++m)
                for (const auto& t : harmonic_terms(l, m)) monomial[t.powers[0] * (l + 1) + t.powers[1]] += c[m] * t.coefficient;
            ContractedShell cs{&s, shell_radius(s, tol / norm1, deriv), {}};
            for (int i = 0; i <= l; ++i)
                for (int j = 0; i + j <= l; ++j)
                    if (monomial[i * (l + 1) + j] != 0.0) cs.polynomial.push_back({{i, j, l - i - j}, monomial[i * (l + 1) + j]});
            atom.radius = std::max(atom.radius, cs.radius);
            atom.max_l = std::max(atom.max_l, l);
            atom.shells.push_back(std::move(cs));
        }
        if (!atom.shells.empty()) atoms.push_back(std::move(atom));
    }
    if (offset != coefficients.size()) throw std::invalid_argument("coefficients do not match the basis on these atoms");
    return atoms;
}

// Points g0..g1 of a molecular grid screened together against each shell by one bounding sphere (PySCF's
// grids are sorted into spatial boxes, so consecutive points are close).
constexpr Eigen::Index kPointBlock = 64;

struct PointBlock {
    Eigen::Index g0, g1;
    Eigen::Vector3d centre;
    double extent;

    PointBlock(const Eigen::Ref<const Eigen::MatrixXd>& coords, Eigen::Index b)
        : g0(b * kPointBlock), g1(std::min<Eigen::Index>(coords.rows(), (b + 1) * kPointBlock)) {
        centre = coords.middleRows(g0, g1 - g0).colwise().mean().transpose();
        extent = 0.0;
        for (Eigen::Index g = g0; g < g1; ++g) extent = std::max(extent, (coords.row(g).transpose() - centre).norm());
    }
    bool misses(const Eigen::Vector3d& at, double radius) const { return (at - centre).norm() > radius + extent; }
};

void check_grid(const std::array<int, 3>& mesh, Eigen::Index n_points) {
    for (int n : mesh)
        if (n <= 0) throw std::invalid_argument("mesh sizes must be positive");
    if (n_points != static_cast<Eigen::Index>(mesh[0]) * mesh[1] * mesh[2])
        throw std::invalid_argument("the grid values do not match the mesh size");
}

}  // namespace

double shell_radius(const Shell& shell, double tol, int deriv) {
    const int l = shell.l;
    // |Y_lm| <= sqrt((2l+1)/4pi); the gradient of r^l Y_lm is bounded by (l + 1) times that per r^(l-1).
    const double ymax = std::sqrt((2 * l + 1) / (4 * M_PI)) * (deriv ? l + 1 : 1);
    auto bound = [&](double r) {
        double b = 0.0;
        for (std::size_t k = 0; k < shell.exponents.size(); ++k) {
            double f = std::pow(r, l);
            if (deriv) f += (l ? l * std::pow(r, l - 1) : 0.0) + 2 * shell.exponents[k] * std::pow(r, l + 1);
            b += std::abs(shell.coefficients[k]) * std::exp(-shell.exponents[k] * r * r) * f;
        }
        return b * ymax;
    };
    // From well outside every primitive, step inwards to the outermost point where the bound reaches tol.
    const double step = 0.02;
    double r = 0.0;
    for (double e : shell.exponents) r = std::max(r, std::sqrt((std::log(1.0 / tol) + 50.0) / e));
    while (r > 0 && bound(r) < tol) r -= step;
    return r + step;
}

Eigen::MatrixXd collocate_density(const Basis& basis, const std::vector<int>& numbers,
                                  const Eigen::Ref<const Eigen::MatrixXd>& positions, const Eigen::Matrix3d& cell,
                                  const std::array<int, 3>& mesh, const Eigen::Ref<const Eigen::VectorXd>& coefficients,
                                  int deriv, double tol) {
    int n_functions = 0;
    const auto tasks = shell_tasks(basis, numbers, positions, tol, deriv, &n_functions);
    if (coefficients.size() != n_functions)
        throw std::invalid_argument("coefficients do not match the basis on these atoms");
    const Eigen::Index n_points = static_cast<Eigen::Index>(mesh[0]) * mesh[1] * mesh[2];
    check_grid(mesh, n_points);
    const int nc = deriv ? 4 : 1;
    const Eigen::Matrix3d inverse = cell.inverse();
    Eigen::MatrixXd out = Eigen::MatrixXd::Zero(nc, n_points);  // column-major: point g at data()[g * nc]
#pragma omp parallel
    {
        // One grid per thread: shells of neighbouring atoms overlap in space.
        std::vector<double> local(static_cast<std::size_t>(nc) * n_points, 0.0);
        double val[2 * kMaxL + 1], grad[3 * (2 * kMaxL + 1)];
#pragma omp for schedule(dynamic)
        for (std::size_t t = 0; t < tasks.size(); ++t) {
            const ShellTask& task = tasks[t];
            const int nm = 2 * task.shell->l + 1;
            const double* c = coefficients.data() + task.offset;
            for_each_point(task.centre, task.radius, cell, inverse, mesh, [&](Eigen::Index g, double x, double y, double z) {
                evaluate_shell(*task.shell, x, y, z, val, deriv ? grad : nullptr);
                double* o = local.data() + g * nc;
                for (int m = 0; m < nm; ++m) {
                    o[0] += c[m] * val[m];
                    if (deriv)
                        for (int x3 = 0; x3 < 3; ++x3) o[1 + x3] += c[m] * grad[3 * m + x3];
                }
            });
        }
#pragma omp critical
        out += Eigen::Map<const Eigen::MatrixXd>(local.data(), nc, n_points);
    }
    return out;
}

RowMatrixXd collocate_functions(const Basis& basis, const std::vector<int>& numbers,
                                const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                const Eigen::Ref<const Eigen::MatrixXd>& coords, int deriv, double tol) {
    if (coords.cols() != 3) throw std::invalid_argument("coords must have shape (n_points, 3)");
    int n_functions = 0;
    const auto tasks = shell_tasks(basis, numbers, positions, tol, deriv, &n_functions);
    const Eigen::Index n_points = coords.rows();
    const int nc = deriv ? 4 : 1;
    RowMatrixXd out = RowMatrixXd::Zero(nc * n_points, n_functions);
    const Eigen::Index n_blocks = (n_points + kPointBlock - 1) / kPointBlock;
#pragma omp parallel
    {
        double val[2 * kMaxL + 1], grad[3 * (2 * kMaxL + 1)];
#pragma omp for schedule(dynamic)
        for (Eigen::Index b = 0; b < n_blocks; ++b) {  // each block owns its rows of `out`
            const PointBlock block(coords, b);
            for (const ShellTask& task : tasks) {
                if (block.misses(task.centre, task.radius)) continue;
                const int nm = 2 * task.shell->l + 1;
                const double r2max = task.radius * task.radius;
                for (Eigen::Index g = block.g0; g < block.g1; ++g) {
                    const Eigen::Vector3d d = coords.row(g).transpose() - task.centre;
                    if (d.squaredNorm() > r2max) continue;
                    evaluate_shell(*task.shell, d.x(), d.y(), d.z(), val, deriv ? grad : nullptr);
                    for (int m = 0; m < nm; ++m) {
                        out(g, task.offset + m) = val[m];
                        if (deriv)
                            for (int x3 = 0; x3 < 3; ++x3) out((1 + x3) * n_points + g, task.offset + m) = grad[3 * m + x3];
                    }
                }
            }
        }
    }
    return out;
}

Eigen::MatrixXd collocate_density_points(const Basis& basis, const std::vector<int>& numbers,
                                         const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                         const Eigen::Ref<const Eigen::MatrixXd>& coords,
                                         const Eigen::Ref<const Eigen::VectorXd>& coefficients, int deriv, double tol) {
    if (coords.cols() != 3) throw std::invalid_argument("coords must have shape (n_points, 3)");
    const auto atoms = contracted_atoms(basis, numbers, positions, coefficients, tol, deriv);
    const Eigen::Index n_points = coords.rows();
    const int nc = deriv ? 4 : 1;
    Eigen::MatrixXd out = Eigen::MatrixXd::Zero(nc, n_points);  // column-major: point g at data()[g * nc]
    const Eigen::Index n_blocks = (n_points + kPointBlock - 1) / kPointBlock;
#pragma omp parallel for schedule(dynamic)
    for (Eigen::Index b = 0; b < n_blocks; ++b) {  // each block owns its columns of `out`
        const PointBlock block(coords, b);
        double px[kMaxL + 1], py[kMaxL + 1], pz[kMaxL + 1], p[4];
        for (const ContractedAtom& atom : atoms) {
            if (block.misses(atom.centre, atom.radius)) continue;
            const double atom_r2max = atom.radius * atom.radius;
            for (Eigen::Index g = block.g0; g < block.g1; ++g) {
                const double x = coords(g, 0) - atom.centre.x(), y = coords(g, 1) - atom.centre.y(),
                             z = coords(g, 2) - atom.centre.z(), r2 = x * x + y * y + z * z;
                if (r2 > atom_r2max) continue;
                cartesian_powers(atom.max_l, x, y, z, px, py, pz);
                double* o = out.data() + g * nc;
                for (const ContractedShell& cs : atom.shells) {
                    if (r2 > cs.radius * cs.radius) continue;
                    double radial, dradial;
                    radial_part(*cs.shell, r2, &radial, &dradial);
                    polynomial(cs.polynomial, px, py, pz, deriv != 0, p);
                    o[0] += radial * p[0];
                    if (deriv) {  // grad (R P) = 2 r dR/d(r^2) P + R grad P
                        o[1] += 2 * x * dradial * p[0] + radial * p[1];
                        o[2] += 2 * y * dradial * p[0] + radial * p[2];
                        o[3] += 2 * z * dradial * p[0] + radial * p[3];
                    }
                }
            }
        }
    }
    return out;
}

Eigen::VectorXd integrate_functions(const Basis& basis, const std::vector<int>& numbers,
                                    const Eigen::Ref<const Eigen::MatrixXd>& positions, const Eigen::Matrix3d& cell,
                                    const std::array<int, 3>& mesh, const Eigen::Ref<const Eigen::MatrixXd>& values,
                                    double tol) {
    const int nc = static_cast<int>(values.rows());
    if (nc != 1 && nc != 4) throw std::invalid_argument("values must have 1 or 4 rows (f, or f and a vector field)");
    check_grid(mesh, values.cols());
    const int deriv = nc == 4 ? 1 : 0;
    int n_functions = 0;
    const auto tasks = shell_tasks(basis, numbers, positions, tol, deriv, &n_functions);
    const Eigen::MatrixXd f = values;  // contiguous (nc, N) column-major copy
    const Eigen::Matrix3d inverse = cell.inverse();
    Eigen::VectorXd w = Eigen::VectorXd::Zero(n_functions);
#pragma omp parallel
    {
        double val[2 * kMaxL + 1], grad[3 * (2 * kMaxL + 1)];
#pragma omp for schedule(dynamic)
        for (std::size_t t = 0; t < tasks.size(); ++t) {
            const ShellTask& task = tasks[t];
            const int nm = 2 * task.shell->l + 1;
            double sum[2 * kMaxL + 1] = {};
            for_each_point(task.centre, task.radius, cell, inverse, mesh, [&](Eigen::Index g, double x, double y, double z) {
                evaluate_shell(*task.shell, x, y, z, val, deriv ? grad : nullptr);
                const double* v = f.data() + g * nc;
                for (int m = 0; m < nm; ++m) {
                    sum[m] += v[0] * val[m];
                    if (deriv) sum[m] += v[1] * grad[3 * m] + v[2] * grad[3 * m + 1] + v[3] * grad[3 * m + 2];
                }
            });
            for (int m = 0; m < nm; ++m) w[task.offset + m] = sum[m];  // each task owns its entries
        }
    }
    return w;
}

}  // namespace rhocast
