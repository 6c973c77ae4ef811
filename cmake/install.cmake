# cmake/install.cmake - what `cmake --install` puts under the prefix:
#   lib/libfp4*.a                      every library (ref, emu, kernels, conform,
#                                      model, and vectors once it has sources)
#   include/fp4sim/*.h                 their public headers (never *_internal.h)
#   bin/fp4sim                         the command-line program
#   lib/cmake/fp4sim/                  generated package: find_package(fp4sim)
#                                      gives fp4sim::fp4ref, fp4sim::fp4emu, ...
#   lib/pkgconfig/fp4sim.pc            pkg-config: all libraries, static order
include(CMakePackageConfigHelpers)

set(FP4SIM_INSTALL_LIBS fp4ref fp4emu fp4kernels fp4conform fp4model fp4vectors)

install(TARGETS ${FP4SIM_INSTALL_LIBS} EXPORT fp4simTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fp4sim)
install(TARGETS fp4sim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Public headers: each component's fp4*.h. Internal headers (*_internal.h)
# stay in the tree; a public header never includes one (checked by the
# install_consumer test, which compiles against the installed headers only).
set(_fp4_headers "")
foreach(dir ref emu kernels conformance vectors model)
  file(GLOB _h ${PROJECT_SOURCE_DIR}/${dir}/fp4*.h)
  list(FILTER _h EXCLUDE REGEX "_internal\\.h$")
  list(APPEND _fp4_headers ${_h})
endforeach()
install(FILES ${_fp4_headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fp4sim)

set(_fp4_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/fp4sim)
install(EXPORT fp4simTargets NAMESPACE fp4sim:: DESTINATION ${_fp4_cmakedir})
configure_package_config_file(cmake/fp4sim-config.cmake.in
  ${PROJECT_BINARY_DIR}/fp4sim-config.cmake INSTALL_DESTINATION ${_fp4_cmakedir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/fp4sim-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/fp4sim-config.cmake
              ${PROJECT_BINARY_DIR}/fp4sim-config-version.cmake
        DESTINATION ${_fp4_cmakedir})

# pkg-config: the libraries in link order (a library before what it uses).
set(FP4SIM_PC_CUDA_LIBS "")
if(FP4SIM_HAVE_CUDA)
  set(FP4SIM_PC_CUDA_LIBS "-L${CUDAToolkit_LIBRARY_DIR} -lcudart_static -lrt -lstdc++")
endif()
set(FP4SIM_PC_LIBS "-lfp4conform -lfp4model -lfp4emu -lfp4kernels -lfp4ref")
get_target_property(_fp4_vectors_type fp4vectors TYPE)
if(NOT _fp4_vectors_type STREQUAL "INTERFACE_LIBRARY")
  set(FP4SIM_PC_LIBS "-lfp4vectors ${FP4SIM_PC_LIBS}")
endif()
# Relocatable: the prefix is found from the .pc file's own place, so a tree
# installed with `cmake --install build --prefix DIR` works from DIR.
file(RELATIVE_PATH FP4SIM_PC_UP /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" FP4SIM_PC_UP "${FP4SIM_PC_UP}")
configure_file(cmake/fp4sim.pc.in ${PROJECT_BINARY_DIR}/fp4sim.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/fp4sim.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
