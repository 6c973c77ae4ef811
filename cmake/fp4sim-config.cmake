# fp4sim CMake package config: find_package(fp4sim) gives the imported
# target fp4sim::fp4ref (static library + headers) and its dependencies.
include(CMakeFindDependencyMacro)
find_dependency(OpenMP COMPONENTS C)
find_dependency(PkgConfig)
pkg_check_modules(FP4SIM_DEPS REQUIRED IMPORTED_TARGET mpfr gmp libcjson)
get_filename_component(_fp4sim_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET fp4sim::fp4ref)
  add_library(fp4sim::fp4ref STATIC IMPORTED)
  find_library(_fp4sim_lib fp4ref PATHS "${_fp4sim_prefix}/lib" "${_fp4sim_prefix}/lib64"
               NO_DEFAULT_PATH REQUIRED)
  set_target_properties(fp4sim::fp4ref PROPERTIES
    IMPORTED_LOCATION "${_fp4sim_lib}"
    INTERFACE_INCLUDE_DIRECTORIES "${_fp4sim_prefix}/include/fp4sim"
    INTERFACE_LINK_LIBRARIES "OpenMP::OpenMP_C;PkgConfig::FP4SIM_DEPS;m")
endif()
