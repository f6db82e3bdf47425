#!/usr/bin/env python3
"""The reference face detector: the bundled RetinaFace ONNX graph run by onnxruntime on the
whole image at once (ORT_THREADS intra-op threads, default 2), with facexlib's steps (its `RetinaFace.detect_faces`, written out here):
BGR minus (104, 117, 123); anchors of sizes 16/32, 64/128, 256/512 at strides 8, 16, 32;
variances 0.1 and 0.2; confidence > 0.8; the best 5000; NMS at 0.4 with `+ 1` areas; the
best 750. Prints the faces as JSON (score, box [x1, y1, x2, y2], landmarks [[x, y] x 5]).

    python3 scripts/faces-reference.py IMAGE [MODEL.onnx]   (needs onnxruntime, numpy, Pillow)
"""
import json, os, sys
import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
model = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "..", "models", "retinaface-mnet025.onnx")
img = np.asarray(Image.open(sys.argv[1]).convert("RGB")).astype(np.float32)
x = (img[..., ::-1] - np.array([104, 117, 123], np.float32)).transpose(2, 0, 1)[None].copy()
opts = ort.SessionOptions()
opts.intra_op_num_threads = int(os.environ.get("ORT_THREADS", "2"))
loc, conf, landm = [o[0] for o in ort.InferenceSession(model, opts).run(None, {"input": x})]
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
faces = [{"score": float(scores[i]), "box": boxes[i].tolist(), "landmarks": marks[i].reshape(5, 2).tolist()}
         for i in kept[:750]]
print(json.dumps({"width": w, "height": h, "faces": faces}))
