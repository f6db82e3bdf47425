#!/usr/bin/env bash
# rss-driver-room.sh — peak RSS (/usr/bin/time -v) against --max-memory where a GPU driver is
# loaded: for each binary of BINS (paths; default target/release/gigascale), each backend of
# BACKENDS (default "gpu auto cpu"), each budget of MEMS (default "64M 256M 1G") and --threads
# 2 and 16, one job on IMG (default: a 2000x1500 enlargement of fixtures/astronaut-group.jpg,
# made with PIL) to x4 in 1024-px tiles, and with MODEL=anime (or a .param) the model's x4 on
# CROP (default 256x256, the image's top-left corner). Prints the backend the job took, its
# plan, the peak RSS, whether it warned about the driver, the seconds, and whether every run
# of a case gave the same bytes.
# On a GPU machine, also `. scripts/device-prelude.sh; device_gpu` first (see
# ../shared/device-gpu.md); on the 2-core VM the GPU is lavapipe (`auto` finds no device node
# there and stays on the CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
bins=${BINS:-target/release/gigascale}
py=${PYTHON:-python3}
img=${IMG:-/tmp/driver-room.jpg}
if [[ ! -f $img ]]; then
  $py -c "from PIL import Image
Image.open('fixtures/astronaut-group.jpg').convert('RGB').resize((2000, 1500), Image.BICUBIC).save('$img', quality=92)"
fi
args=(--scale 4 --tile 1024)
if [[ -n ${MODEL:-} ]]; then
  crop=${CROP:-256x256}
  $py -c "from PIL import Image; w, h = map(int, '$crop'.split('x')); Image.open('$img').crop((0, 0, w, h)).save('/tmp/driver-room-crop.png')"
  img=/tmp/driver-room-crop.png
  args=(--scale 4 --model "$MODEL")
fi
field() { grep -o "\"$1\":[0-9.]*" /tmp/driver-room.err | head -1 | cut -d: -f2; }
for backend in ${BACKENDS:-gpu auto cpu}; do for mem in ${MEMS:-64M 256M 1G}; do
  sums=()
  for t in 2 16; do for b in $bins; do
    out=/tmp/driver-room-$t-$(basename "$b").tif
    /usr/bin/time -v "$b" upscale "$img" "$out" "${args[@]}" --backend "$backend" --threads $t \
      --max-memory "$mem" --overwrite --progress json 2>/tmp/driver-room.err >/dev/null
    rc=$?
    rss=$(grep -o 'Maximum resident set size (kbytes): [0-9]*' /tmp/driver-room.err | grep -o '[0-9]*$')
    took=$(grep -o '"event":"backend","kind":"[^"]*","detail":"[^"]*' /tmp/driver-room.err | cut -d'"' -f8,12 | cut -c1-90)
    warned=$(grep -c 'GPU driver' /tmp/driver-room.err)
    plan=$(( $(field planned_memory) / 1048576 ))
    echo "$b $backend --max-memory $mem --threads $t: rc=$rc, took [$took], plan $plan MiB," \
      "threads $(field threads) slots $(field slots), peak RSS $((rss / 1024)) MiB, driver warnings $warned, $(field seconds) s"
    sums+=("$(md5sum < "$out" | cut -c1-32)")
  done; done
  same=$(printf '%s\n' "${sums[@]}" | sort -u | wc -l)
  echo "  $backend $mem: $([[ $same == 1 ]] && echo "the same bytes in every run" || echo "DIFFERENT bytes ($same)")"
done; done
