# Builds tests/package/consumer against dsd, installed (find_package), as a
# subdirectory, or through FetchContent.
# Invoked by ctest with -DDSD_SOURCE_DIR, -DWORK_DIR and -DMODE.
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGV}\n${out}")
  endif()
endfunction()
set(consumer ${DSD_SOURCE_DIR}/tests/package/consumer)
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} -S ${DSD_SOURCE_DIR} -B ${WORK_DIR}/dsd-build -DDSD_BUILD_TESTS=OFF
      -DDSD_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/dsd-build)
  run(${CMAKE_COMMAND} -S ${consumer} -B ${WORK_DIR}/consumer-build -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
elseif(MODE STREQUAL "fetchcontent")
  run(${CMAKE_COMMAND} -S ${consumer} -B ${WORK_DIR}/consumer-build -DDSD_FETCH_DIR=${DSD_SOURCE_DIR})
else()
  run(${CMAKE_COMMAND} -S ${consumer} -B ${WORK_DIR}/consumer-build -DDSD_SOURCE_DIR=${DSD_SOURCE_DIR})
endif()
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)
run(${WORK_DIR}/consumer-build/consumer)
