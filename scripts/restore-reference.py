#!/usr/bin/env python3
"""The reference of `gigascale upscale --faces`: facexlib's steps written out in numpy, on the
whole image at once, with ONNX Runtime (one intra-op thread) running the restorer.

    python3 scripts/restore-reference.py IMAGE BACKGROUND MODEL.onnx OUT.png \
        [--faces FACES.json] [--fidelity W] [--filter NAME] [--threads N]
        [--enlarge-model M --enlarge-scale F]

IMAGE is the input; BACKGROUND the same job's output *without* faces (any upscale: resampled
or from a model), which fixes the output size; MODEL the restorer. The faces are the
reference detector's (scripts/faces-reference.py: onnxruntime on the whole image), or those of
FACES.json (`gigascale faces --json`) to check the rest of the pipeline alone. Then, per face,
best score first (docs/faces.md):

1. the least-squares similarity taking its 5 landmarks to facexlib's 512x512 FFHQ template;
2. the aligned crop: each template pixel's centre mapped back, bilinear, neighbours outside
   the image facexlib's grey (RGB 132, 133, 135), rounded;
3. restored: (crop/255 - 0.5)/0.5, the model (CodeFormer's fidelity as its second input),
   clamp to [-1, 1], round((y + 1)/2 * 255);
4. pasted: each output pixel's centre taken to the template, the restored face sampled there
   with the filter (stretched by the template pixels per output pixel when above 1,
   normalised, indices clamped), blended by m = smoothstep((d - 25)/50), d = the distance to
   the template's edge: round(m * face + (1 - m) * pixel). With --enlarge-model (the job's
   --model), a face larger than 512 px in the output is first enlarged by that model (F
   times, by gigascale itself: $GIGASCALE_BIN), and sampled there.

Needs numpy, Pillow, onnxruntime.
"""
import argparse, json, math, os, subprocess, sys, tempfile
import numpy as np
import onnxruntime as ort
from PIL import Image

FFHQ_512 = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                     [201.26117, 371.41043], [313.08905, 371.15118]])
BORDER = np.array([132.0, 133.0, 135.0])
EDGE = 512


def weight(name, x):
    ax = np.abs(x)
    if name == "nearest":
        return (ax < 0.5).astype(np.float64)
    if name == "bilinear":
        return np.maximum(1.0 - ax, 0.0)
    if name in ("bicubic", "mitchell"):
        b, c = (0.0, 0.5) if name == "bicubic" else (1 / 3, 1 / 3)
        near = ((12 - 9 * b - 6 * c) * ax**3 + (-18 + 12 * b + 6 * c) * ax**2 + (6 - 2 * b)) / 6
        far = ((-b - 6 * c) * ax**3 + (6 * b + 30 * c) * ax**2 + (-12 * b - 48 * c) * ax + (8 * b + 24 * c)) / 6
        return np.where(ax < 1, near, np.where(ax < 2, far, 0.0))
    if name == "lanczos3":
        return np.where(ax < 3, np.sinc(ax) * np.sinc(ax / 3), 0.0)
    raise SystemExit(f"unknown filter {name}")


SUPPORT = {"nearest": 0.5, "bilinear": 1.0, "bicubic": 2.0, "mitchell": 2.0, "lanczos3": 3.0}


def similarity(landmarks):
    p, q = np.asarray(landmarks, np.float64), FFHQ_512
    mp, mq = p.mean(0), q.mean(0)
    pc, qc = p - mp, q - mq
    norm = (pc**2).sum()
    a = (pc[:, 0] * qc[:, 0] + pc[:, 1] * qc[:, 1]).sum() / norm
    b = (pc[:, 0] * qc[:, 1] - pc[:, 1] * qc[:, 0]).sum() / norm
    t = mq - np.array([a * mp[0] - b * mp[1], b * mp[0] + a * mp[1]])
    return a, b, t


def apply(sim, x, y):
    a, b, t = sim
    return a * x - b * y + t[0], b * x + a * y + t[1]


def inverse(sim):
    a, b, t = sim
    d = a * a + b * b
    ia, ib = a / d, -b / d
    return ia, ib, -np.array([ia * t[0] - ib * t[1], ib * t[0] + ia * t[1]])


def crop(img, sim):
    h, w = img.shape[:2]
    j, i = np.mgrid[0:EDGE, 0:EDGE].astype(np.float64)
    px, py = apply(inverse(sim), i, j)
    x0, y0 = np.floor(px), np.floor(py)
    fx, fy = (px - x0)[..., None], (py - y0)[..., None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)

    def at(x, y):
        inside = (x >= 0) & (y >= 0) & (x < w) & (y < h)
        v = img[np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)].astype(np.float64)
        return np.where(inside[..., None], v, BORDER)

    top = (1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)
    bottom = (1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1)
    return np.clip(np.floor((1 - fy) * top + fy * bottom + 0.5), 0, 255).astype(np.uint8)


def restore(session, face, fidelity):
    x = ((face.astype(np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5))
    feeds = {session.get_inputs()[0].name: x.transpose(2, 0, 1)[None].copy()}
    for extra in session.get_inputs()[1:]:
        dtype = np.float64 if extra.type == "tensor(double)" else np.float32
        feeds[extra.name] = np.array([fidelity], dtype)
    y = np.clip(session.run(None, feeds)[0][0], np.float32(-1), np.float32(1))
    v = (y + np.float32(1)) / np.float32(2) * np.float32(255)
    return np.floor(v + np.float32(0.5)).astype(np.uint8).transpose(1, 2, 0)


def axis_taps(name, c, s, edge=EDGE):
    reach = SUPPORT[name] * s
    lo = np.ceil(c - reach).astype(np.int64)
    n = int(math.floor(2 * reach)) + 2
    idx = lo[:, None] + np.arange(n)[None, :]
    wts = weight(name, (idx - c[:, None]) / s)
    wts = np.where(idx <= np.floor(c + reach)[:, None], wts, 0.0)
    total = wts.sum(1, keepdims=True)
    return np.clip(idx, 0, edge - 1), wts / np.where(total == 0, 1, total)


def paste(out, face, sim, ratio, name, zoom=1):
    """`face` is the restored face, or it enlarged `zoom` times by the job's model."""
    oh, ow = out.shape[:2]
    stretch = max(1.0, math.hypot(sim[0], sim[1]) * max(ratio) * zoom)
    edge = EDGE * zoom
    ys, xs = np.mgrid[0:oh, 0:ow]
    for y0 in range(0, oh, 256):  # bands of rows, to bound the arrays
        yy, xx = ys[y0:y0 + 256].ravel(), xs[y0:y0 + 256].ravel()
        qx, qy = apply(sim, (xx + 0.5) * ratio[0] - 0.5, (yy + 0.5) * ratio[1] - 0.5)
        d = np.minimum.reduce([qx + 0.5, EDGE - 0.5 - qx, qy + 0.5, EDGE - 0.5 - qy])
        t = np.clip((d - 25) / 50, 0, 1)
        m = t * t * (3 - 2 * t)
        sel = m > 0
        if not sel.any():
            continue
        px, py = (qx[sel], qy[sel]) if zoom == 1 else ((qx[sel] + 0.5) * zoom - 0.5, (qy[sel] + 0.5) * zoom - 0.5)
        ix, wx = axis_taps(name, px, stretch, edge)
        iy, wy = axis_taps(name, py, stretch, edge)
        f = face.astype(np.float64)
        rgb = np.zeros((sel.sum(), 3))
        for a in range(iy.shape[1]):
            line = np.zeros((sel.sum(), 3))
            for b in range(ix.shape[1]):
                line += wx[:, b:b + 1] * f[iy[:, a], ix[:, b]]
            rgb += wy[:, a:a + 1] * line
        bg = out[yy[sel], xx[sel]].astype(np.float64)
        mm = m[sel][:, None]
        out[yy[sel], xx[sel]] = np.clip(np.floor(mm * rgb + (1 - mm) * bg + 0.5), 0, 255).astype(out.dtype)


def enlarge(face, model, scale):
    """The face enlarged by gigascale's own model pass (the same engine as the job's)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "face.png"), os.path.join(tmp, "big.png")
        Image.fromarray(face).save(src)
        subprocess.run([os.environ["GIGASCALE_BIN"], "upscale", src, dst, "--model", model, "--scale", str(scale),
                        "--backend", "cpu", "-q"], check=True)
        return np.asarray(Image.open(dst).convert("RGB"))


def main():
    ap = argparse.ArgumentParser()
    for a in ["image", "background", "model", "out"]:
        ap.add_argument(a)
    ap.add_argument("--faces")
    ap.add_argument("--fidelity", type=float, default=0.5)
    ap.add_argument("--filter", default="lanczos3")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime's intra-op threads (--face-threads)")
    ap.add_argument("--enlarge-model", help="the job's --model: faces over 512 px in the output are enlarged "
                    "by it first, with $GIGASCALE_BIN upscale FACE --model M --scale F --backend cpu")
    ap.add_argument("--enlarge-scale", type=int, default=1, help="that model's factor")
    a = ap.parse_args()
    img = np.asarray(Image.open(a.image).convert("RGB"))
    out = np.asarray(Image.open(a.background).convert("RGB")).copy()
    if a.faces:
        found = json.load(open(a.faces))
    else:
        here = os.path.dirname(os.path.abspath(__file__))
        run = subprocess.run([sys.executable, os.path.join(here, "faces-reference.py"), a.image],
                             check=True, capture_output=True, text=True)
        found = json.loads(run.stdout)
    options = ort.SessionOptions()
    options.intra_op_num_threads = a.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(a.model, options)
    ratio = (img.shape[1] / out.shape[1], img.shape[0] / out.shape[0])
    for f in found["faces"]:
        sim = similarity(f["landmarks"])
        face, zoom = restore(session, crop(img, sim), a.fidelity), 1
        if a.enlarge_model and math.hypot(sim[0], sim[1]) * max(ratio) < 1:
            face, zoom = enlarge(face, a.enlarge_model, a.enlarge_scale), a.enlarge_scale
        paste(out, face, sim, ratio, a.filter, zoom)
    Image.fromarray(out).save(a.out)
    print(json.dumps({"faces": len(found["faces"])}))


if __name__ == "__main__":
    main()
