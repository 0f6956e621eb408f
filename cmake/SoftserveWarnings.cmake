# softserve_warnings(<target>): the warning set every first-party target compiles with.
function(softserve_warnings target)
  # Partial aggregate initialisation ({a, b} leaving later members at their defaults) is idiomatic
  # for option structs here, so -Wextra's missing-field-initializers is off.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
  # Clang checks the thread-safety annotations (SOFTSERVE_GUARDED_BY, ABSL_GUARDED_BY, ...); a
  # violation fails the build (scripts/check-sanitizers.sh builds with clang).
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    target_compile_options(${target} PRIVATE -Wthread-safety -Werror=thread-safety)
  endif()
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
