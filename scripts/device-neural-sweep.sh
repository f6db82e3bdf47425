#!/usr/bin/env bash
# device-neural-sweep.sh — on the lent GPU machine: the neural pass of --model anime --scale 4 on
# the 2000x3000 photo for several cuts of the GPU convolution work (GIGASCALE_GPU_CONV=PXxOCxGROUP);
# medians of REPS runs after one warm-up. Same carry as device-neural.sh.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
# The binary may travel gzipped (the carry limit).
[[ -f bench/gigascale.gz && ! -x bench/gigascale ]] && gunzip -k bench/gigascale.gz && chmod +x bench/gigascale
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
bin=${BIN:-bench/gigascale}; in=bench/photo-2000x3000.jpg; reps=${REPS:-3}
for t in ${TILINGS:-4x16x64 4x8x64 8x8x64 2x16x64 8x16x32 4x16x128 4x32x64}; do
  for i in $(seq 0 "$reps"); do
    GIGASCALE_GPU_CONV=$t $bin upscale "$in" /tmp/a4.tif --model anime --scale 4 --backend gpu --overwrite --progress json 2>&1 \
      | grep '"event":"done"' \
      | sed -E "s/.*\"neural_s\":([0-9.]+),\"neural_setup_s\":([0-9.]+),\"neural_network_s\":([0-9.]+).*/$t run $i neural_s \1 setup_s \2 network_s \3/"
  done
done | tee "$out/sweep.txt"
