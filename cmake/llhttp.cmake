# llhttp has no library package in Debian: node-llhttp ships its C sources and
# header, which we compile into a static library here. Nothing is copied into
# the repository.
set(EIM_LLHTTP_SRC_DIR "/usr/share/llhttp" CACHE PATH "llhttp C sources (node-llhttp)")
set(EIM_LLHTTP_INCLUDE_DIR "/usr/share/include/llhttp" CACHE PATH "llhttp header (node-llhttp)")
foreach(f api.c http.c llhttp.c)
  if(NOT EXISTS "${EIM_LLHTTP_SRC_DIR}/${f}")
    message(FATAL_ERROR "llhttp source ${EIM_LLHTTP_SRC_DIR}/${f} not found: install Debian's node-llhttp")
  endif()
endforeach()
add_library(eim_llhttp STATIC
  ${EIM_LLHTTP_SRC_DIR}/api.c ${EIM_LLHTTP_SRC_DIR}/http.c ${EIM_LLHTTP_SRC_DIR}/llhttp.c)
target_include_directories(eim_llhttp SYSTEM PUBLIC ${EIM_LLHTTP_INCLUDE_DIR})
set_target_properties(eim_llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON C_STANDARD 99)
# Third-party code: our warning flags are not its business.
target_compile_options(eim_llhttp PRIVATE -w)
