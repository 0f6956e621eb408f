# softserve_warnings(<target>): the warning set every first-party target compiles with.
function(softserve_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()

# softserve_library(<name> SOURCES ... DEPS ...): a first-party static library whose include
# root is the repository root ("core/model/t5_model.h").
function(softserve_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  softserve_warnings(${name})
endfunction()
