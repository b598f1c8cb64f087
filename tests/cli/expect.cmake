# Runs COMMAND (a ;-list) and checks its exit status (EXPECT_FAIL: non-zero wanted) and that its
# combined output matches EXPECT_REGEX. Used for example binaries: success paths and clean errors.
separate_arguments(cmd UNIX_COMMAND "${COMMAND}")
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(EXPECT_FAIL AND rc EQUAL 0)
  message(FATAL_ERROR "expected a non-zero exit status")
elseif(NOT EXPECT_FAIL AND NOT rc EQUAL 0)
  message(FATAL_ERROR "exit status ${rc}")
endif()
if(NOT "${out}${err}" MATCHES "${EXPECT_REGEX}")
  message(FATAL_ERROR "output does not match: ${EXPECT_REGEX}")
endif()
