"""An independent float reference of SRMD (f64 numpy, from the ncnn .param/.bin): the image
extended by 12 px (edge replicated, as srmd-ncnn-vulkan's preprocessing clamps), the 15
degradation maps and the noise level (N/255; none for srmdnf) fed as real constant channels,
every convolution zero-padding, pixel shuffle, the 12 px (times the scale) cropped, x255 + 0.5
floored and clamped. Used by scripts/srmd-check.py."""
import numpy as np
from PIL import Image
DEG = [-1.12360956e-08, -1.36899159e-08, 1.85637958e-02, 2.86066886e-08, 3.35292965e-02, 8.37272935e-08,
       -2.54424009e-07, -3.16234976e-02, -1.35169253e-02, -1.10466090e-08, 3.84753793e-02, 3.79465739e-08,
       -2.44916752e-01, -8.02213490e-01, -5.40549755e-01]
def load(param, binp):
    lines = open(param).read().split('\n')[2:]
    raw = open(binp, 'rb').read(); pos = 0; layers = []
    for l in lines:
        f = l.split()
        if not f: continue
        kind = f[0]; kv = dict(x.split('=') for x in f[4 + int(f[2]) + int(f[3]):])
        if kind == 'Convolution':
            cout, k, pad, nw = int(kv['0']), int(kv['1']), int(kv.get('4', 0)), int(kv['6'])
            tag = np.frombuffer(raw, '<u4', 1, pos)[0]; pos += 4
            if tag == 0x01306B47:  # ncnn's tag of float16 weights
                w = np.frombuffer(raw, '<f2', nw, pos).astype(np.float64); pos += 2 * nw
            else:
                assert tag == 0, tag
                w = np.frombuffer(raw, '<f4', nw, pos).astype(np.float64); pos += 4 * nw
            b = np.frombuffer(raw, '<f4', cout, pos).astype(np.float64) if kv.get('5', '0') != '0' else np.zeros(cout)
            if kv.get('5', '0') != '0': pos += 4 * cout
            layers.append(('conv', w.reshape(cout, -1, k, k), b, pad, int(kv.get('9', 0))))
        elif kind == 'PixelShuffle':
            layers.append(('ps', int(kv['0'])))
    assert pos == len(raw), (pos, len(raw))
    return layers
def conv(x, w, b, pad, act):
    c, h, wd = x.shape; cout, cin, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - k + 1, wd + 2 * pad - k + 1
    cols = np.stack([xp[:, i:i + oh, j:j + ow] for i in range(k) for j in range(k)], 1)  # cin, k*k, oh, ow
    y = np.tensordot(w.reshape(cout, cin, k * k), cols, axes=([1, 2], [0, 1])) + b[:, None, None]
    return np.maximum(y, 0) if act == 1 else y
def run(layers, img, noise, pad=12):
    rgb = np.asarray(img.convert('RGB'), dtype=np.float64).transpose(2, 0, 1) / 255.0
    rgb = np.pad(rgb, ((0, 0), (pad, pad), (pad, pad)), mode='edge')
    _, h, w = rgb.shape
    maps = [np.full((h, w), v) for v in DEG] + ([] if noise < 0 else [np.full((h, w), noise / 255.0)])
    x = np.concatenate([rgb, np.stack(maps)])
    for L in layers:
        if L[0] == 'conv': x = conv(x, *L[1:])
        else:
            r = L[1]; c, hh, ww = x.shape
            x = x.reshape(c // (r * r), r, r, hh, ww).transpose(0, 3, 1, 4, 2).reshape(c // (r * r), hh * r, ww * r)
    s = x.shape[1] // h
    x = x[:, pad * s:-pad * s, pad * s:-pad * s]
    return np.clip(np.floor(x * 255 + 0.5), 0, 255).transpose(1, 2, 0)
