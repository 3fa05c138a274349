# install + export: find_package(duet) gives duet::scheduler, duet::platform
# and duet::native (or duet::web when built with Emscripten).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(_duet_targets duet_scheduler duet_platform)
if(TARGET duet_native)
  list(APPEND _duet_targets duet_native)
endif()
if(TARGET duet_web)
  list(APPEND _duet_targets duet_web)
endif()
if(TARGET duet_fibers)
  list(APPEND _duet_targets duet_fibers)
endif()

install(TARGETS ${_duet_targets} EXPORT duetTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
foreach(_layer scheduler platform native web)
  if(IS_DIRECTORY "${PROJECT_SOURCE_DIR}/${_layer}/include" AND TARGET duet_${_layer})
    install(DIRECTORY "${PROJECT_SOURCE_DIR}/${_layer}/include/" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
endforeach()

set(_duet_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/duet)
install(EXPORT duetTargets NAMESPACE duet:: DESTINATION ${_duet_cmake_dir})
configure_package_config_file(cmake/duetConfig.cmake.in "${PROJECT_BINARY_DIR}/duetConfig.cmake"
                              INSTALL_DESTINATION ${_duet_cmake_dir})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/duetConfigVersion.cmake"
                                 COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/duetConfig.cmake" "${PROJECT_BINARY_DIR}/duetConfigVersion.cmake"
              cmake/DuetCompilerCheck.cmake
        DESTINATION ${_duet_cmake_dir})
