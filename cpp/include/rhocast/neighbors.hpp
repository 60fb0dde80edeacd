// Neighbour lists by linked cells: O(N) for molecules and periodic cells of any shape, including
// cutoffs longer than the cell (several images of an atom, an atom's own images).
#pragma once

#include <Eigen/Dense>
#include <array>
#include <vector>

namespace rhocast {

struct NeighborPair {
    int i, j;
    std::array<int, 3> shift;  // r_ij = r_j - r_i + shift . cell (ASE's convention)
    Eigen::Vector3d vector;    // r_ij
    double distance;
};

// Every ordered pair (i, j, shift) with 0 < |r_ij| < cutoff, sorted by i then j.
// `cell` rows are the lattice vectors; nullptr for a molecule. Same length unit throughout.
std::vector<NeighborPair> neighbor_list(const Eigen::Ref<const Eigen::MatrixXd>& positions,
                                        const Eigen::Matrix3d* cell, double cutoff);

}  // namespace rhocast
