#!/usr/bin/env bash
# device-weight-layout.sh — on the lent GPU machine (../shared/device-gpu.md): the tensor-core
# convolutions' weight matrices stored by columns and loaded column-major (the default, the
# layout of the second operand of NVIDIA's matrix instructions) against by rows
# (GIGASCALE_GPU_WEIGHT_ROWS=1, src/gpu/neural_weights.rs): the same bytes first (the CPU's on a
# 200x150 crop for realesrgan-x4plus and realesr-animevideov3-x4, then the two layouts' outputs
# on the 1000x1000 crop and the 2000x3000 photo), then x4plus's device profile
# (GIGASCALE_GPU_PROFILE=1) and animevideov3's pass, the layouts alternating, REPS times.
# Carry: .gl, .whl-x4/realesrgan.tar.xz, bench/gigascale.xz, bench/photo-2000x3000.jpg.
set -uo pipefail
. scripts/device-prelude.sh
device_realesrgan >/dev/null 2>&1
device_crops >/dev/null 2>&1
reps=${REPS:-3}
x4=(--model "$m/realesrgan-x4plus.param" --scale 4)
av=(--model "$m/realesr-animevideov3-x4.param" --scale 4)
for name in x4 av; do
  declare -n args=$name
  device_up /tmp/cpu.png /tmp/crop200.png "${args[@]}" --backend cpu --max-memory 2G >/dev/null
  device_up /tmp/gpu.png /tmp/crop200.png "${args[@]}" --backend gpu >/dev/null
  cmp -s /tmp/cpu.png /tmp/gpu.png && r=same || r=DIFFERENT
  echo "$name crop200, weights by columns, GPU against CPU: $r"
done
for i in $(seq "$reps"); do
  for rows in 0 1; do
    p=$(GIGASCALE_GPU_WEIGHT_ROWS=$rows GIGASCALE_GPU_PROFILE=1 "$bin" upscale /tmp/crop1000.png /tmp/x4-$rows.tif \
      --overwrite "${x4[@]}" --backend gpu 2>&1 | grep 'neural profile')
    echo "x4plus 1000x1000 rows=$rows run $i: $p"
  done
done
for i in $(seq "$reps"); do
  for rows in 0 1; do
    echo "animevideov3-x4 2000x3000 rows=$rows run $i: $(GIGASCALE_GPU_WEIGHT_ROWS=$rows device_up /tmp/av-$rows.tif bench/photo-2000x3000.jpg "${av[@]}" --backend gpu)"
  done
done
for name in x4 av; do
  cmp -s /tmp/$name-0.tif /tmp/$name-1.tif && r=same || r=DIFFERENT
  echo "$name big, columns against rows: $r"
done
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
