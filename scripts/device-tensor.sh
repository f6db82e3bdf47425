#!/usr/bin/env bash
# device-tensor.sh — on the lent GPU machine (../shared/device-gpu.md): the tensor-core
# convolutions (src/gpu/neural_tensor.rs, the default; GIGASCALE_GPU_TENSOR=0 for the plain) against the CPU and the
# plain GPU shaders (same bytes?), whole and in small tiles (a --gpu-memory just above each
# model's minimum), then their speed against the plain shaders and ncnn-vulkan in one call:
# realesrgan-x4plus on a 1000x1000 crop, animevideov3 x4 on the 2000x3000 photo.
# Carry: .gl (Vulkan loader, libomp5), .whl-x4/realesrgan.tar.xz (the wheel's package with the
# two models run here), bench/gigascale.xz, bench/photo-2000x3000.jpg. Results: $OUT.
# SKIP_CHECK=1 times only, SKIP_TIME=1 checks only, CUTS="4x16x64 ..." adds a sweep of the
# plain shaders' cuts.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
. scripts/device-prelude.sh
device_realesrgan
reps=${REPS:-3}
device_machine "$out"
device_crops
if [[ -z ${SKIP_CHECK:-} ]]; then
  for model in realesrgan-x4plus realesr-animevideov3-x4; do
    s=${model: -1}; [[ $model == *x4plus* ]] && s=4
    for crop in crop97 crop200; do
      # Small tiles: 3 % over the least --gpu-memory the crop runs with (the refusal names it).
      small=$($bin upscale /tmp/$crop.png /tmp/x.png --overwrite --model $m/$model.param --scale $s --backend gpu \
        --gpu-memory 1M 2>&1 | grep -o -- '--gpu-memory [0-9.]* [KMG]iB at least' | awk '{print $2 * 1.03 $3}')
      small=${small:-64M}
      a=$(device_up /tmp/cpu.png /tmp/$crop.png --model $m/$model.param --scale $s --backend cpu --max-memory 1G)
      b=$(GIGASCALE_GPU_TENSOR=0 device_up /tmp/plain.png /tmp/$crop.png --model $m/$model.param --scale $s --backend gpu)
      c=$(GIGASCALE_GPU_TENSOR=1 device_up /tmp/tensor.png /tmp/$crop.png --model $m/$model.param --scale $s --backend gpu)
      d=$(GIGASCALE_GPU_TENSOR=1 device_up /tmp/tensor-small.png /tmp/$crop.png --model $m/$model.param --scale $s --backend gpu --gpu-memory $small)
      echo "$model $crop: cpu [$a] plain [$b] tensor [$c] tensor-$small [$d]" | tee -a "$out/check.txt"
      for f in plain tensor tensor-small; do cmp -s /tmp/cpu.png /tmp/$f.png && r=same || r=DIFFERENT; echo "  $f vs cpu: $r" | tee -a "$out/check.txt"; done
    done
  done
  for name in anime photo; do
    for s in 2 4; do
      a=$(device_up /tmp/cpu.png /tmp/crop97.png --model $name --scale $s --backend cpu)
      c=$(GIGASCALE_GPU_TENSOR=1 device_up /tmp/tensor.png /tmp/crop97.png --model $name --scale $s --backend gpu)
      cmp -s /tmp/cpu.png /tmp/tensor.png && r=same || r=DIFFERENT
      echo "--model $name --scale $s crop97: cpu [$a] tensor [$c] $r" | tee -a "$out/check.txt"
    done
  done
fi
[[ -n ${SKIP_TIME:-} ]] && exit 0
python3 scripts/ncnn-realesrgan-time.py "$reps" 2>&1 | grep -v "%$" | tee "$out/ncnn.txt"
# The plain shaders' cut of the work (GIGASCALE_GPU_CONV=PXxOCxGROUP; same bytes), swept.
for cut in ${CUTS:-}; do
  for i in $(seq "$reps"); do
    echo "cut $cut run $i: animevideov3-x4 6MP $(GIGASCALE_GPU_CONV=$cut device_up /tmp/o.tif bench/photo-2000x3000.jpg --model $m/realesr-animevideov3-x4.param --scale 4 --backend gpu) x4plus 500 $(GIGASCALE_GPU_CONV=$cut device_up /tmp/o.png /tmp/crop500.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu)" | tee -a "$out/cuts.txt"
  done
done
for i in $(seq "$reps"); do
  for mode in tensor plain; do
    [[ $mode == plain ]] && export GIGASCALE_GPU_TENSOR=0 || export GIGASCALE_GPU_TENSOR=1
    echo "x4plus 1000x1000 $mode run $i: $(device_up /tmp/o.tif /tmp/crop1000.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu)" | tee -a "$out/runs.txt"
    echo "animevideov3-x4 2000x3000 $mode run $i: $(device_up /tmp/o.tif bench/photo-2000x3000.jpg --model $m/realesr-animevideov3-x4.param --scale 4 --backend gpu)" | tee -a "$out/runs.txt"
    echo "anime x15 zstd $mode run $i: $(device_up /tmp/o.tif bench/photo-2000x3000.jpg --model anime --scale 15 --compression zstd --backend gpu)" | tee -a "$out/runs.txt"
    echo "anime x15 zstd auto ($mode) run $i: $(device_up /tmp/o.tif bench/photo-2000x3000.jpg --model anime --scale 15 --compression zstd)" | tee -a "$out/runs.txt"
  done
done
