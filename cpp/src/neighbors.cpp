#include "rhocast/neighbors.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_map>

namespace rhocast {

std::vector<NeighborPair> neighbor_list(const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                        const Eigen::Matrix3d* cell, double cutoff) {
    const int n = static_cast<int>(positions.rows());
    if (positions.cols() != 3) throw std::invalid_argument("positions must have shape (n, 3)");
    if (!(cutoff > 0)) throw std::invalid_argument("cutoff must be positive");
    if (!positions.allFinite()) throw std::invalid_argument("positions contain NaN or infinity");

    // Images: every atom, plus (periodic) its translations that can be within the cutoff of an
    // atom of the home cell. Positions are first wrapped into the cell; `wrap` remembers by how much.
    std::vector<Eigen::Vector3d> pos(n);
    std::vector<std::array<int, 3>> wrap(n, {0, 0, 0});
    std::vector<int> image_atom;
    std::vector<std::array<int, 3>> image_shift;
    std::vector<Eigen::Vector3d> image_pos;
    if (cell) {
        if (std::abs(cell->determinant()) < 1e-12) throw std::invalid_argument("the cell is singular");
        const Eigen::Matrix3d inv = cell->inverse();  // frac = r^T inv
        for (int i = 0; i < n; ++i) {
            Eigen::RowVector3d frac = positions.row(i) * inv;
            for (int k = 0; k < 3; ++k) {
                const double f = std::floor(frac[k]);
                wrap[i][k] = -static_cast<int>(f);
                frac[k] -= f;
            }
            pos[i] = (frac * (*cell)).transpose();
        }
        // Reach along lattice vector k: cutoff / (interplanar spacing) = cutoff * |column k of inv|.
        int reach[3];
        for (int k = 0; k < 3; ++k) reach[k] = static_cast<int>(std::ceil(cutoff * inv.col(k).norm()));
        for (int a = -reach[0]; a <= reach[0]; ++a)
            for (int b = -reach[1]; b <= reach[1]; ++b)
                for (int c = -reach[2]; c <= reach[2]; ++c)
                    for (int i = 0; i < n; ++i) {
                        Eigen::Vector3d p = pos[i] + (a * cell->row(0) + b * cell->row(1) + c * cell->row(2)).transpose();
                        // Keep only images within the cutoff of the home cell (fractional margin).
                        Eigen::RowVector3d f = p.transpose() * inv;
                        bool near = true;
                        for (int k = 0; k < 3; ++k) {
                            const double margin = cutoff * inv.col(k).norm();
                            if (f[k] < -margin || f[k] > 1.0 + margin) near = false;
                        }
                        if (!near) continue;
                        image_atom.push_back(i);
                        image_shift.push_back({a, b, c});
                        image_pos.push_back(p);
                    }
    } else {
        for (int i = 0; i < n; ++i) {
            pos[i] = positions.row(i).transpose();
            image_atom.push_back(i);
            image_shift.push_back({0, 0, 0});
            image_pos.push_back(pos[i]);
        }
    }

    // Linked cells of edge >= cutoff over the bounding box of the images.
    Eigen::Vector3d lo = Eigen::Vector3d::Constant(1e300), hi = Eigen::Vector3d::Constant(-1e300);
    for (const auto& p : image_pos) {
        lo = lo.cwiseMin(p);
        hi = hi.cwiseMax(p);
    }
    std::array<long, 3> dims;
    for (int k = 0; k < 3; ++k) dims[k] = std::max(1L, static_cast<long>((hi[k] - lo[k]) / cutoff));
    auto cell_of = [&](const Eigen::Vector3d& p) {
        std::array<long, 3> c;
        for (int k = 0; k < 3; ++k)
            c[k] = std::min(dims[k] - 1, std::max(0L, static_cast<long>((p[k] - lo[k]) / cutoff)));
        return c;
    };
    auto key = [&](const std::array<long, 3>& c) { return (c[0] * dims[1] + c[1]) * dims[2] + c[2]; };
    std::unordered_map<long, std::vector<int>> bins;
    for (int k = 0; k < static_cast<int>(image_pos.size()); ++k) bins[key(cell_of(image_pos[k]))].push_back(k);

    std::vector<std::vector<NeighborPair>> per_atom(n);
    const double cut2 = cutoff * cutoff;
#pragma omp parallel for schedule(dynamic, 16)
    for (int i = 0; i < n; ++i) {
        const auto c = cell_of(pos[i]);
        for (long dx = -1; dx <= 1; ++dx)
            for (long dy = -1; dy <= 1; ++dy)
                for (long dz = -1; dz <= 1; ++dz) {
                    std::array<long, 3> nc{c[0] + dx, c[1] + dy, c[2] + dz};
                    if (nc[0] < 0 || nc[1] < 0 || nc[2] < 0 || nc[0] >= dims[0] || nc[1] >= dims[1] ||
                        nc[2] >= dims[2])
                        continue;
                    auto it = bins.find(key(nc));
                    if (it == bins.end()) continue;
                    for (int k : it->second) {
                        const Eigen::Vector3d d = image_pos[k] - pos[i];
                        const double d2 = d.squaredNorm();
                        if (d2 >= cut2 || d2 == 0.0) continue;
                        const int j = image_atom[k];
                        std::array<int, 3> s = image_shift[k];
                        for (int q = 0; q < 3; ++q) s[q] += wrap[j][q] - wrap[i][q];
                        per_atom[i].push_back({i, j, s, d, std::sqrt(d2)});
                    }
                }
        std::sort(per_atom[i].begin(), per_atom[i].end(),
                  [](const NeighborPair& a, const NeighborPair& b) {
                      return a.j != b.j ? a.j < b.j : a.shift < b.shift;
                  });
    }
    std::vector<NeighborPair> out;
    for (auto& v : per_atom) out.insert(out.end(), v.begin(), v.end());
    return out;
}

}  // namespace rhocast
