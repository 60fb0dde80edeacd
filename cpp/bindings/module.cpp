#include <omp.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "registry.hpp"

namespace rhocast::bindings {

// A function-local static avoids the static-initialisation-order problem between binding files.
static std::vector<std::pair<std::string, Binder>>& binders() {
    static std::vector<std::pair<std::string, Binder>> list;
    return list;
}

int register_binder(const char* name, Binder binder) {
    binders().emplace_back(name, binder);
    return static_cast<int>(binders().size());
}

}  // namespace rhocast::bindings

PYBIND11_MODULE(_core, m) {
    m.doc() = "rhocast's compiled core (C++17, OpenMP, Eigen)";
    m.def("get_num_threads", []() { return omp_get_max_threads(); },
          "Number of OpenMP threads the core uses.");
    m.def("set_num_threads", [](int n) { omp_set_num_threads(n); }, pybind11::arg("n"),
          "Sets the number of OpenMP threads of the core.");
    auto list = rhocast::bindings::binders();
    std::sort(list.begin(), list.end());  // deterministic registration order
    for (auto& [name, bind] : list) bind(m);
}
