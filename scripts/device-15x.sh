#!/usr/bin/env bash
# device-15x.sh — the first session's run on the lent GPU machine (see ../shared/device-gpu.md),
# now through scripts/device-ab.sh (one measuring harness): the 15x case uncompressed and with
# zstd, --backend gpu and cpu in the same run, per-stage times, peak RSS, a byte comparison of
# the outputs, one run under --gpu-memory 64M, the disk's write floor and the GPU test binary.
#
#   BIN=./bench/gigascale scripts/device-15x.sh       (results under $OUT, default ./device-out)
set -uo pipefail
out=${OUT:-device-out}
export BINS=${BIN:-./target/release/gigascale} BACKENDS="gpu cpu" REPS=${REPS:-3}
here=$(dirname "$0")
COMP=none FLOOR=1 GPU_TESTS=0 OUT=$out/none CONFIGS="default|" "$here/device-ab.sh"
COMP=none BACKENDS=gpu REPS=1 GPU_TESTS=0 OUT=$out/gpu-memory CONFIGS="gpu-memory-64M|--gpu-memory 64M" \
  "$here/device-ab.sh"
COMP=zstd OUT=$out/zstd CONFIGS="default|" "$here/device-ab.sh"
