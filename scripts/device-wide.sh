#!/usr/bin/env bash
# device-wide.sh — on the lent GPU machine (../shared/device-gpu.md): 24-bit activations
# (--activation-bits 24, src/gpu/neural_wide.rs) on the device against the CPU — the
# tensor-core shaders (the default where the adapter has them), the plain ones
# (GIGASCALE_GPU_TENSOR=0; GIGASCALE_GPU_TENSOR_WIDE=0 at 24 bits only) and small tiles
# (a --gpu-memory just above the crop's minimum) — for realesrgan-x4plus and -x4plus-anime;
# then realesrgan-x4plus's time at 16 and 24 bits (tensor cores and plain) and at its file's
# fitted width against ncnn-vulkan in one call, the 24-bit tensor and plain outputs of the
# 1000x1000 crop compared, and peak RSS of a 24-bit GPU job under --max-memory at 2 and 16
# threads.
# Carry: .gl, .whl-x4/realesrgan.tar.xz, bench/gigascale.xz, bench/photo-2000x3000.jpg.
# Results: $OUT. SKIP_CHECK=1 times only; WIDE_MODELS names the models checked (both by default).
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
. scripts/device-prelude.sh
device_realesrgan
reps=${REPS:-3}
device_machine "$out"
device_crops
if [[ -z ${SKIP_CHECK:-} ]]; then
  for model in ${WIDE_MODELS:-realesrgan-x4plus realesrgan-x4plus-anime}; do
    for crop in crop97 crop200; do
      w=(--model $m/$model.param --scale 4 --activation-bits 24)
      small=$($bin upscale /tmp/$crop.png /tmp/x.png --overwrite "${w[@]}" --backend gpu \
        --gpu-memory 1M 2>&1 | grep -o -- '--gpu-memory [0-9.]* [KMG]iB at least' | awk '{print $2 * 1.03 $3}')
      small=${small:-64M}
      a=$(device_up /tmp/cpu.png /tmp/$crop.png "${w[@]}" --backend cpu --max-memory 2G)
      b=$(GIGASCALE_GPU_TENSOR=0 device_up /tmp/plain.png /tmp/$crop.png "${w[@]}" --backend gpu)
      c=$(GIGASCALE_GPU_TENSOR_WIDE=1 device_up /tmp/tensor.png /tmp/$crop.png "${w[@]}" --backend gpu)
      d=$(GIGASCALE_GPU_TENSOR_WIDE=1 device_up /tmp/tensor-small.png /tmp/$crop.png "${w[@]}" --backend gpu --gpu-memory $small)
      e=$(device_up /tmp/narrow.png /tmp/$crop.png --model $m/$model.param --scale 4 --backend gpu --activation-bits 16)
      echo "$model $crop 24-bit: cpu [$a] plain [$b] tensor [$c] tensor-$small [$d] (16-bit gpu [$e])" | tee -a "$out/check.txt"
      for f in plain tensor tensor-small; do cmp -s /tmp/cpu.png /tmp/$f.png && r=same || r=DIFFERENT; echo "  $f vs cpu: $r" | tee -a "$out/check.txt"; done
      cmp -s /tmp/cpu.png /tmp/narrow.png && echo "  16-bit gives the same bytes (unexpected)" | tee -a "$out/check.txt"
    done
  done
fi
python3 scripts/ncnn-realesrgan-time.py "$reps" 2>&1 | grep -v "%$" | grep x4plus | tee "$out/ncnn.txt"
for i in $(seq "$reps"); do
  for bits in 16 24; do
    echo "x4plus 1000x1000 $bits-bit tensor run $i: $(device_up /tmp/o.tif /tmp/crop1000.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu --activation-bits $bits)" | tee -a "$out/runs.txt"
  done
  echo "x4plus 1000x1000 24-bit plain run $i: $(GIGASCALE_GPU_TENSOR_WIDE=0 device_up /tmp/p.tif /tmp/crop1000.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu --activation-bits 24)" | tee -a "$out/runs.txt"
  echo "x4plus 1000x1000 fitted width run $i: $(device_up /tmp/f.tif /tmp/crop1000.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu)" | tee -a "$out/runs.txt"
done
cmp -s /tmp/o.tif /tmp/p.tif && r=same || r=DIFFERENT
echo "x4plus 1000x1000 24-bit tensor vs plain: $r" | tee -a "$out/runs.txt"
for t in 2 16; do
  for mem in 1300M 2G; do
    /usr/bin/time -v $bin upscale /tmp/crop500.png /tmp/r.png --overwrite -q --model $m/realesrgan-x4plus.param \
      --scale 4 --backend gpu --activation-bits 24 --threads $t --max-memory $mem 2>/tmp/time.txt
    echo "x4plus 500x500 24-bit gpu threads $t max-memory $mem: rc $? peak $(grep 'Maximum resident' /tmp/time.txt | awk '{print $6}') KiB, $(sha256sum < /tmp/r.png | cut -c1-16)" | tee -a "$out/rss.txt"
  done
done
echo "x4plus 1000x1000 24-bit plan: $($bin upscale /tmp/crop1000.png /tmp/o.tif --overwrite --model $m/realesrgan-x4plus.param --scale 4 --backend gpu --activation-bits 24 2>&1 | grep 'model realesrgan')" | tee -a "$out/runs.txt"
