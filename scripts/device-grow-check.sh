#!/usr/bin/env bash
# device-grow-check.sh — on the lent GPU machine (../shared/device-gpu.md): the tiles a pass on a
# discrete device takes (src/neural/device_pass.rs) and what they cost: realesrgan-x4plus on the
# photo's 1000x1000 crop at its file's fitted width (3 runs, and the plan), --model anime
# --scale 15 --compression zstd with --backend gpu and auto (3 runs each, alternating), peak RSS
# of --model anime x4 on the photo under 300M and 1G and of x4plus under 2G, at 2 and 16 threads.
# Carry .gl, .whl-x4, bench. Prints to stdout.
set -u
. scripts/device-prelude.sh >/dev/null 2>&1; device_realesrgan >/dev/null 2>&1; g=$bin; p=bench/photo-2000x3000.jpg
python3 -c "
from PIL import Image
Image.open('bench/photo-2000x3000.jpg').crop((500, 1000, 1500, 2000)).save('/tmp/crop1000.png')"
for i in 1 2 3; do echo "x4plus 1000x1000 fitted width run $i: $(device_up /tmp/f.tif /tmp/crop1000.png --model $m/realesrgan-x4plus.param --scale 4 --backend gpu)"; done
$g upscale /tmp/crop1000.png /tmp/f.tif --overwrite --model $m/realesrgan-x4plus.param --scale 4 --backend gpu 2>&1 | grep 'model realesrgan'
for b in gpu auto gpu auto gpu auto; do /usr/bin/time -f "%e s %M KiB" -o /tmp/t.txt $g upscale $p /tmp/o15.tif --overwrite -q --model anime --scale 15 --compression zstd --backend $b; echo "anime 15x zstd $b rc $? $(cat /tmp/t.txt)"; done
$g upscale $p /tmp/o15.tif --overwrite --model anime --scale 15 --compression zstd --backend gpu 2>&1 | grep 'model anime'
for t in 2 16; do for mem in 300M 1G; do /usr/bin/time -v $g upscale $p /tmp/r.tif --overwrite --model anime --scale 4 --backend gpu --threads $t --max-memory $mem 2>/tmp/time.txt; echo "anime x4 6MP gpu threads $t $mem: rc $? peak $(grep 'Maximum resident' /tmp/time.txt | awk '{print $6}') KiB $(sha256sum < /tmp/r.tif | cut -c1-16) $(grep -o 'in [0-9]* tiles of [0-9]* px' /tmp/time.txt)"; done; done
for t in 2 16; do /usr/bin/time -v $g upscale /tmp/crop1000.png /tmp/r.tif --overwrite --model $m/realesrgan-x4plus.param --scale 4 --backend gpu --threads $t --max-memory 2G 2>/tmp/time.txt; echo "x4plus 1000x1000 gpu threads $t 2G: rc $? peak $(grep 'Maximum resident' /tmp/time.txt | awk '{print $6}') KiB $(sha256sum < /tmp/r.tif | cut -c1-16) $(grep -o 'in [0-9]* tiles of [0-9]* px' /tmp/time.txt)"; done
