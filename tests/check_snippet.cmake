# Fails unless DOC contains the lines of SOURCE between "// example-begin NAME" and
# "// example-end NAME" (compared without leading indentation): documentation examples are
# compiled code.
file(READ "${SOURCE}" src)
file(READ "${DOC}" doc)
string(REGEX MATCH "// example-begin ${NAME}\n(.*)\n[ ]*// example-end ${NAME}" _ "${src}")
set(snippet "\n${CMAKE_MATCH_1}")
if(snippet STREQUAL "\n")
  message(FATAL_ERROR "no example ${NAME} in ${SOURCE}")
endif()
string(REGEX REPLACE "\n[ ]+" "\n" snippet "${snippet}")
string(REGEX REPLACE "\n[ ]+" "\n" doc "\n${doc}")
string(FIND "${doc}" "${snippet}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${DOC} does not contain example '${NAME}' of ${SOURCE}:${snippet}")
endif()
