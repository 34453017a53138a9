#!/usr/bin/env bash
# The cuda backend on a real GPU in one command (issue 29): what is installed, which backend
# --backend auto picks, the cuda parity tests with the simulator off, three training steps against
# the reference's losses, matmul against cuBLAS, training steps against cpu and PyTorch CUDA, one
# CNN epoch on cuda and cpu, and nnsim bench. Installs nothing. Each part runs under its own
# timeout, within an overall budget; after each part the report is rewritten, so that a run cut
# short keeps what it measured:
#   OUTDIR/gpu_check.md    the acceptance points (pass / fail / not measured) and every figure
#   OUTDIR/gpu_check.json  the same as data
#   OUTDIR/gpu_check.log   the end of each part's output
#
# usage: benchmarks/gpu_check.sh [--sim] [--budget S] [--mnist DIR] [--cpu-cnn512-ms MS] [OUTDIR]
#   OUTDIR          where the report goes (default: $OUT)
#   --sim           Numba's CUDA simulator and tiny shapes: tests this script, measures nothing
#   --budget S      seconds for all parts together (default 540); later parts get what is left
#   --mnist DIR     the MNIST IDX files (default: shared/datasets/mnist or ../shared/datasets/mnist
#                   if there, else the built-in mnist-mini)
#   --cpu-cnn512-ms the cpu backend's CNN step at batch 512 on the 2-core machine (point 2);
#                   without it, this machine's CPU limited to 2 threads stands in
# Exit status: 0 when every part ran (the verdicts are in the report), 1 when one failed or timed out.

set -u
SIM=0 BUDGET=540 MNIST="" CPU_MS="" DIR=""
while [ $# -gt 0 ]; do
    case "$1" in
        --sim) SIM=1 ;;
        --budget) BUDGET=${2:?--budget needs seconds}; shift ;;
        --mnist) MNIST=${2:?--mnist needs a folder}; shift ;;
        --cpu-cnn512-ms) CPU_MS=${2:?--cpu-cnn512-ms needs a number}; shift ;;
        -h|--help) sed -n '2,/^# Exit/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) DIR=$1 ;;
    esac
    shift
done
DIR=${DIR:-${OUT:-}}
if [ -z "$DIR" ]; then echo "gpu_check: name an output folder (or set OUT)" >&2; exit 2; fi
if [ -n "$MNIST" ] && [ ! -d "$MNIST" ]; then echo "gpu_check: no folder $MNIST" >&2; exit 2; fi
mkdir -p "$DIR" && DIR=$(cd "$DIR" && pwd) || exit 2
[ -n "$MNIST" ] && MNIST=$(cd "$MNIST" && pwd)
cd "$(dirname "$0")/.." || exit 2
if [ -z "$MNIST" ] && [ $SIM = 0 ]; then
    for candidate in shared/datasets/mnist ../shared/datasets/mnist; do
        if [ -d "$candidate" ]; then MNIST=$(cd "$candidate" && pwd); break; fi
    done
fi

PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 NUMBA_ENABLE_CUDASIM=$SIM
WORK=$(mktemp -d) || exit 2
trap 'rm -rf "$WORK"' EXIT
SIM_FLAG=() PARITY=(-k cuda)
if [ $SIM = 1 ]; then
    SIM_FLAG=(--sim)
    # a few cheap cases, in one process: parallel workers would each start and warm the cpu kernels
    PARITY=(-n 0 -k "cuda and (matmul or test_attention_beyond or test_simulator)")
fi
CPU_FLAG=()
[ -n "$CPU_MS" ] && CPU_FLAG=(--cpu-cnn512-ms "$CPU_MS")
FAILED=0

summarize() {
    "$PY" benchmarks/gpu_check.py summary "$WORK" "$DIR" "${SIM_FLAG[@]}" "${CPU_FLAG[@]}" "$@" \
        || echo "gpu_check: the report could not be written" >&2
}

run_part() {  # name timeout command...: runs it under the smaller of its timeout and what is left
    local name=$1 limit=$2 left=$((BUDGET - SECONDS))
    shift 2
    if [ $left -lt 20 ]; then
        echo "skipped the budget of $BUDGET s was spent" > "$WORK/$name.status"
        echo "== $name: skipped, the budget of $BUDGET s is spent"
        FAILED=1
        summarize
        return
    fi
    [ "$limit" -gt $((left - 5)) ] && limit=$((left - 5))
    echo "== $name (at most $limit s)"
    local started=$SECONDS
    timeout -k 10 "$limit" "$@" > "$WORK/$name.log" 2>&1
    local rc=$?
    echo "$rc $((SECONDS - started)) $limit" > "$WORK/$name.status"
    echo "   exit $rc after $((SECONDS - started)) s"
    [ $rc = 0 ] || FAILED=1
    summarize
}

SECONDS=0
run_part environment 60 "$PY" benchmarks/gpu_check.py environment "$WORK/environment.json"
run_part auto 90 "$PY" benchmarks/gpu_check.py auto "$WORK/auto.json"
run_part parity 200 "$PY" -m pytest tests/engine/test_backend_parity.py tests/engine/test_cuda_backend.py \
    "${PARITY[@]}" -q -p no:cacheprovider --junitxml="$WORK/parity.xml"
for part in losses matmul steps mnist; do
    limit=$(case $part in losses|matmul) echo 90 ;; *) echo 180 ;; esac)
    run_part $part "$limit" "$PY" benchmarks/cuda_bench.py $part --json "$WORK/$part.json" "${SIM_FLAG[@]}" \
        ${MNIST:+--mnist "$MNIST"}
done
QUICK=()
[ $((BUDGET - SECONDS)) -lt 240 ] && QUICK=(--quick)
run_part bench 300 "$PY" benchmarks/gpu_check.py bench "$WORK/bench.json" "${SIM_FLAG[@]}" "${QUICK[@]}"

echo
summarize --print
echo
echo "report: $DIR/gpu_check.md (and .json, .log)"
exit $FAILED
