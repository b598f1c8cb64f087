# Resume equivalence: an uninterrupted run and a run stopped after STOP batches, then resumed
# from its checkpoint, must end with byte-identical checkpoints (same weights, masks, state).
# Arguments: EXE, MODE, STOP, WORK.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(common ${EXE} --mode ${MODE} --epochs 2,2,2 --train-limit 2000 --quiet --threads 2)
function(run expect_rc)
  execute_process(COMMAND ${common} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL expect_rc)
    message(FATAL_ERROR "exit ${rc}, expected ${expect_rc}: ${ARGN}\n${out}${err}")
  endif()
  message("${out}")
endfunction()
run(0 --checkpoint ${WORK}/full.safetensors)
run(3 --checkpoint ${WORK}/part.safetensors --stop-after-batches ${STOP})
run(0 --checkpoint ${WORK}/part.safetensors --resume ${WORK}/part.safetensors)
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORK}/full.safetensors ${WORK}/part.safetensors
                RESULT_VARIABLE differ)
if(differ)
  message(FATAL_ERROR "resumed run (${MODE}, stopped after ${STOP} batches) differs from the uninterrupted one")
endif()
