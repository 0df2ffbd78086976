#!/bin/sh
# Runs a test program under mpirun with NP ranks on this machine: mpirun_test.sh NP PROGRAM
# [ARGS...]. Exits 77 (skipped) with the reason when there is no mpirun. The ranks may
# outnumber the cores (--oversubscribe); Open MPI's refusal to run as root is lifted by the
# caller's OMPI_ALLOW_RUN_AS_ROOT=1 and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 (tests/CMakeLists.txt).
np="$1"
shift
launcher="$(command -v mpirun || command -v mpiexec)"
if [ -z "$launcher" ]; then
    echo "skipped: no mpirun or mpiexec on PATH (Debian: apt-get install openmpi-bin)"
    exit 77
fi
extra=""
# Open MPI wants --oversubscribe when ranks outnumber cores; MPICH's Hydra has no such option
if "$launcher" --version 2>&1 | grep -q "Open MPI"; then extra="--oversubscribe"; fi
# shellcheck disable=SC2086
exec timeout 280 "$launcher" -np "$np" $extra "$@"
