#!/usr/bin/env python3
"""The reference face detector: the bundled RetinaFace ONNX graph run by onnxruntime on the
whole image at once (ORT_THREADS intra-op threads, default 2), with facexlib's steps (its `RetinaFace.detect_faces`, written out here):
BGR minus (104, 117, 123); anchors of sizes 16/32, 64/128, 256/512 at strides 8, 16, 32;
variances 0.1 and 0.2; confidence > 0.8; the best 5000; NMS at 0.4 with `+ 1` areas; the
best 750. Then, for an image whose short side exceeds 640 px, facexlib's reduced copy (short side
640, made by `$GIGASCALE_BIN upscale --filter bilinear --width W --height H`, gigascale's own
resampler, as `gigascale faces` makes it): its faces of 400 px or more at full size are taken,
scaled back, and full-size faces overlapping one (IoU > 0.4) or lying mostly inside one (over
half their area) are dropped. Prints the faces as JSON (score, box [x1, y1,
x2, y2], landmarks [[x, y] x 5]).

    python3 scripts/faces-reference.py IMAGE [MODEL.onnx]   (needs onnxruntime, numpy, Pillow)
"""
import json, os, subprocess, sys, tempfile
import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
model = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "..", "models", "retinaface-mnet025.onnx")
opts = ort.SessionOptions()
opts.intra_op_num_threads = int(os.environ.get("ORT_THREADS", "2"))
session = ort.InferenceSession(model, opts)


def iou(a, b):
    area = lambda c: (c[2] - c[0] + 1) * (c[3] - c[1] + 1)
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    return iw * ih / (area(a) + area(b) - iw * ih)


def detect(img):
    x = (img[..., ::-1] - np.array([104, 117, 123], np.float32)).transpose(2, 0, 1)[None].copy()
    loc, conf, landm = [o[0] for o in session.run(None, {"input": x})]
    h, w = img.shape[:2]
    priors = []
    for step, sizes in zip([8, 16, 32], [[16, 32], [64, 128], [256, 512]]):
        for i in range(-(-h // step)):
            for j in range(-(-w // step)):
                priors += [[(j + 0.5) * step, (i + 0.5) * step, m, m] for m in sizes]
    p = np.array(priors, np.float32)
    assert len(p) == len(loc), (len(p), len(loc))
    boxes = np.concatenate([p[:, :2] + loc[:, :2] * 0.1 * p[:, 2:], p[:, 2:] * np.exp(loc[:, 2:] * 0.2)], 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    marks = np.concatenate([p[:, :2] + landm[:, 2 * k:2 * k + 2] * 0.1 * p[:, 2:] for k in range(5)], 1)
    scores = conf[:, 1]
    keep = np.where(scores > 0.8)[0]
    boxes, marks, scores = boxes[keep], marks[keep], scores[keep]
    order = scores.argsort(kind="stable")[::-1][:5000]
    boxes, marks, scores = boxes[order], marks[order], scores[order]
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    kept, rest = [], np.arange(len(scores))
    while rest.size:
        i, rest = rest[0], rest[1:]
        kept.append(i)
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.maximum(0, rb - lt + 1), axis=1)
        rest = rest[inter / (areas[i] + areas[rest] - inter) <= 0.4]
    return [{"score": float(scores[i]), "box": boxes[i].tolist(), "landmarks": marks[i].reshape(5, 2).tolist()}
            for i in kept[:750]]


def inside(small, big):
    area = max(0.0, small[2] - small[0]) * max(0.0, small[3] - small[1])
    iw = max(0.0, min(small[2], big[2]) - max(small[0], big[0]))
    ih = max(0.0, min(small[3], big[3]) - max(small[1], big[1]))
    return iw * ih > 0.5 * area


img = np.asarray(Image.open(sys.argv[1]).convert("RGB")).astype(np.float32)
h, w = img.shape[:2]
faces = detect(img)
short = min(w, h)
if short > 640:
    rw, rh = max(1, (w * 640 + short // 2) // short), max(1, (h * 640 + short // 2) // short)
    with tempfile.TemporaryDirectory() as tmp:
        small_path = os.path.join(tmp, "small.png")
        subprocess.run([os.environ.get("GIGASCALE_BIN", "gigascale"), "upscale", sys.argv[1], small_path, "--filter",
                        "bilinear", "--width", str(rw), "--height", str(rh), "--backend", "cpu", "-q"], check=True)
        small = np.asarray(Image.open(small_path).convert("RGB")).astype(np.float32)
    sx, sy = np.float32(w) / np.float32(rw), np.float32(h) / np.float32(rh)
    large = []
    for f in detect(small):
        b = [float(np.float32(f["box"][0]) * sx), float(np.float32(f["box"][1]) * sy),
             float(np.float32(f["box"][2]) * sx), float(np.float32(f["box"][3]) * sy)]
        marks = [[float(np.float32(x) * sx), float(np.float32(y) * sy)] for x, y in f["landmarks"]]
        if max(b[2] - b[0], b[3] - b[1]) >= 400:
            large.append({"score": f["score"], "box": b, "landmarks": marks})
    covered = lambda f: any(iou(f["box"], l["box"]) > 0.4 or inside(f["box"], l["box"]) for l in large)
    faces = [f for f in faces if not covered(f)] + large
    faces.sort(key=lambda f: -f["score"])
print(json.dumps({"width": w, "height": h, "faces": faces}))
