# eim_add_plugin(NAME SOURCES src... [LIBS lib...])
# Builds plugin NAME as NAME.so into the plugin directory of the build tree
# (lib/exampleim/plugins) and installs it there under the prefix.
function(eim_add_plugin name)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS" ${ARGN})
  add_library(${name} MODULE ${P_SOURCES})
  set_target_properties(${name} PROPERTIES PREFIX "" OUTPUT_NAME "${name}"
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY "${EIM_PLUGIN_BUILD_DIR}")
  target_include_directories(${name} PRIVATE "${PROJECT_SOURCE_DIR}/include")
  if(P_LIBS)
    target_link_libraries(${name} PRIVATE ${P_LIBS})
  endif()
  install(TARGETS ${name} LIBRARY DESTINATION "${EIM_PLUGIN_INSTALL_DIR}")
endfunction()
