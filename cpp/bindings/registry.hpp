// Each binding file registers itself here, so that adding a concept never edits a central list.
//
//     RHOCAST_BINDING(neighbors) { m.def("neighbor_list", ...); }
#pragma once

#include <pybind11/pybind11.h>

namespace rhocast::bindings {

using Binder = void (*)(pybind11::module_&);
int register_binder(const char* name, Binder binder);

}  // namespace rhocast::bindings

#define RHOCAST_BINDING(name)                                                                   \
    static void rhocast_bind_##name(pybind11::module_& m);                                      \
    static const int rhocast_registered_##name =                                                \
        ::rhocast::bindings::register_binder(#name, rhocast_bind_##name);                       \
    static void rhocast_bind_##name(pybind11::module_& m)
