# Runs EXE with ARGS (a ;-list) and writes its standard output to OUT, or fails the build with
# its error: how the build turns `graft completion bash` and `graft man` into installed files.
execute_process(COMMAND ${EXE} ${ARGS} OUTPUT_FILE ${OUT}.tmp RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  file(REMOVE ${OUT}.tmp)
  message(FATAL_ERROR "${EXE} ${ARGS}: exit status ${rc}: ${err}")
endif()
file(RENAME ${OUT}.tmp ${OUT})
