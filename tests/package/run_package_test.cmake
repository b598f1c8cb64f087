# Packaging tests, run by ctest as `cmake -D... -P run_package_test.cmake` with -DDSD_SOURCE_DIR,
# -DWORK_DIR, -DCXX_COMPILER (the compiler of dsd's and the consumer's configure) and -DMODE:
#   install           configure dsd (with DSD_ARGS) and install it to WORK_DIR (a test fixture)
#   find_package      build tests/package/consumer against the dsd installed at PREFIX
#   add_subdirectory  build the consumer with dsd as a subdirectory
#   fetchcontent      build the consumer with dsd through FetchContent
# Consumer modes take (lists comma-separated, since ctest splits arguments at semicolons):
#   COMPONENTS, OPTIONAL_COMPONENTS  what the consumer's find_package asks for
#   CONSUMER_ARGS    more arguments for the consumer's configure (-DCMAKE_DISABLE_FIND_PACKAGE_...)
#   USE              the components the consumer builds a program for (default or empty: all)
#   EXPECT_TARGETS   the components (dsd::<name> targets) the consumer must see, exactly: each
#                    used one's program must run and say OK; one not seen must have no program
#   EXPECT_CONFIGURE regexes the output of the consumer's (successful) configure must match
#   EXPECT_ERROR     regexes: the consumer's configure must fail with output matching each one
# Outputs are matched with runs of white space made one space (CMake wraps its error messages).
cmake_minimum_required(VERSION 3.20)
foreach(var COMPONENTS OPTIONAL_COMPONENTS CONSUMER_ARGS USE EXPECT_TARGETS EXPECT_CONFIGURE
            EXPECT_ERROR DSD_ARGS)
  string(REPLACE "," ";" ${var} "${${var}}")
endforeach()
if(NOT USE)
  set(USE io cuda torch dist)
endif()

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGV}\n${out}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()
# Fails unless `text` matches every regex of the list `regexes`.
function(expect_matches what text regexes)
  string(REGEX REPLACE "[ \t\r\n]+" " " text "${text}")
  foreach(regex IN LISTS regexes)
    if(NOT text MATCHES "${regex}")
      message(FATAL_ERROR "${what} does not match \"${regex}\"")
    endif()
  endforeach()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
if(MODE STREQUAL "install")
  run(${CMAKE_COMMAND} -S ${DSD_SOURCE_DIR} -B ${WORK_DIR}/dsd-build -DDSD_BUILD_TESTS=OFF
      -DDSD_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX=${WORK_DIR}
      -DCMAKE_CXX_COMPILER=${CXX_COMPILER} ${DSD_ARGS})
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/dsd-build)
  file(REMOVE_RECURSE ${WORK_DIR}/dsd-build)
  return()
endif()

set(consumer ${DSD_SOURCE_DIR}/tests/package/consumer)
# The consumer's list options go through an initial cache, which keeps their semicolons.
set(init "set(DSD_CONSUMER_USE \"${USE}\" CACHE STRING \"\")\n")
set(configure ${CMAKE_COMMAND} -S ${consumer} -B ${WORK_DIR}/consumer-build -C ${WORK_DIR}/init.cmake
              -DCMAKE_CXX_COMPILER=${CXX_COMPILER} ${CONSUMER_ARGS})
if(MODE STREQUAL "find_package")
  string(APPEND init "set(DSD_CONSUMER_COMPONENTS \"${COMPONENTS}\" CACHE STRING \"\")\n"
                     "set(DSD_CONSUMER_OPTIONAL \"${OPTIONAL_COMPONENTS}\" CACHE STRING \"\")\n")
  list(APPEND configure -DCMAKE_PREFIX_PATH=${PREFIX})
elseif(MODE STREQUAL "fetchcontent")
  list(APPEND configure -DDSD_FETCH_DIR=${DSD_SOURCE_DIR})
elseif(MODE STREQUAL "add_subdirectory")
  list(APPEND configure -DDSD_SOURCE_DIR=${DSD_SOURCE_DIR})
else()
  message(FATAL_ERROR "unknown MODE \"${MODE}\"")
endif()
file(WRITE ${WORK_DIR}/init.cmake "${init}")

if(EXPECT_ERROR)  # the configure must fail, saying why
  execute_process(COMMAND ${configure} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message("${out}")
  if(rc EQUAL 0)
    message(FATAL_ERROR "the consumer's configure succeeded; expected it to fail")
  endif()
  expect_matches("the output of the consumer's failed configure" "${out}" "${EXPECT_ERROR}")
  return()
endif()

run(${configure})
message("${out}")
expect_matches("the output of the consumer's configure" "${out}" "${EXPECT_CONFIGURE}")
string(REPLACE ";" "," expected "${EXPECT_TARGETS}")
if(NOT out MATCHES "consumer: dsd components: \\[${expected}\\]")
  message(FATAL_ERROR "the consumer did not see exactly the components [${expected}]")
endif()
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)

execute_process(COMMAND ${WORK_DIR}/consumer-build/consumer WORKING_DIRECTORY ${WORK_DIR}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
if(NOT rc EQUAL 0 OR NOT out MATCHES "consumer OK")
  message(FATAL_ERROR "consumer failed (${rc})")
endif()
if("io" IN_LIST EXPECT_TARGETS AND "io" IN_LIST USE)
  if(NOT out MATCHES "checkpoint round trip OK")
    message(FATAL_ERROR "the consumer did not exercise dsd::io")
  endif()
elseif(out MATCHES "checkpoint round trip")
  message(FATAL_ERROR "the consumer used dsd::io, which it should not have")
endif()
# Open MPI refuses root unless told; CI runs as root. A one-rank job runs as a singleton.
set(ENV{OMPI_ALLOW_RUN_AS_ROOT} 1)
set(ENV{OMPI_ALLOW_RUN_AS_ROOT_CONFIRM} 1)
foreach(c cuda torch dist)
  set(program ${WORK_DIR}/consumer-build/consumer_${c})
  if(c IN_LIST EXPECT_TARGETS AND c IN_LIST USE)
    execute_process(COMMAND ${program} WORKING_DIRECTORY ${WORK_DIR}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    message("${out}")
    if(NOT rc EQUAL 0 OR NOT out MATCHES "${c} component OK")
      message(FATAL_ERROR "consumer_${c} failed (${rc})")
    endif()
  elseif(EXISTS ${program})
    message(FATAL_ERROR "consumer_${c} was built, but dsd::${c} should not have been there")
  endif()
endforeach()
