# Warning and sanitizer flags for the project's own targets (never imposed on dsd's users).
function(dsd_project_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion)
  if(DSD_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(DSD_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${DSD_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${DSD_SANITIZE})
  endif()
endfunction()
