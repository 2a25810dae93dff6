# Run at install time (install(SCRIPT)): installs the shipped configuration
# under <prefix>/etc/exampleim with the paths of the installed tree, so the
# installed server runs as `exampleim --config <prefix>/etc/exampleim/exampleim.conf`.
# Existing files are kept: an operator's edits survive a reinstall.
set(prefix "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")
set(etc "${prefix}/@CMAKE_INSTALL_SYSCONFDIR@/exampleim")
set(src "@PROJECT_SOURCE_DIR@")
file(MAKE_DIRECTORY "${etc}/plugins.d")

function(eim_install_text dest text)
  if(EXISTS "${dest}")
    message(STATUS "Keeping: ${dest}")
  else()
    message(STATUS "Installing: ${dest}")
    file(WRITE "${dest}" "${text}")
  endif()
endfunction()

file(READ "${src}/exampleim.conf" conf)
string(REGEX REPLACE "\ndata_dir = [^\n]*" "\ndata_dir = @CMAKE_INSTALL_FULL_LOCALSTATEDIR@/lib/exampleim" conf "${conf}")
string(REGEX REPLACE "\nplugins_dir = [^\n]*" "\nplugins_dir = ${CMAKE_INSTALL_PREFIX}/@CMAKE_INSTALL_SYSCONFDIR@/exampleim/plugins.d\nplugin_path = ${CMAKE_INSTALL_PREFIX}/@EIM_PLUGIN_INSTALL_DIR@" conf "${conf}")
string(REGEX REPLACE "\nweb_dir = [^\n]*" "\nweb_dir = ${CMAKE_INSTALL_PREFIX}/@CMAKE_INSTALL_DATADIR@/exampleim/web" conf "${conf}")
eim_install_text("${etc}/exampleim.conf" "${conf}")

file(GLOB confs "${src}/plugins.d/*.conf")
foreach(f ${confs})
  get_filename_component(name "${f}" NAME)
  file(READ "${f}" text)
  string(REGEX REPLACE "\nwords_file = [^\n]*" "\nwords_file = ${CMAKE_INSTALL_PREFIX}/@CMAKE_INSTALL_SYSCONFDIR@/exampleim/sensitive-words.txt" text "${text}")
  eim_install_text("${etc}/plugins.d/${name}" "${text}")
endforeach()
if(EXISTS "${src}/plugins/filter-sensitive/words.txt")
  file(READ "${src}/plugins/filter-sensitive/words.txt" words)
  eim_install_text("${etc}/sensitive-words.txt" "${words}")
endif()
