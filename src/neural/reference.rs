//! The float reference of a network: every operation of [`Graph`] written out plainly in f32
//! on whole CHW tensors, with ncnn's semantics (zero padding inside convolutions,
//! deconvolution as a scatter then cropped, depth-to-space order, nearest enlargement). It is
//! the oracle the exact engine is checked against, and is itself checked against the real
//! ncnn runtime (`tests/neural.rs`).

use super::graph::{Act, Conv, Graph, Op};

/// A `c x h x w` tensor, channel-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tensor {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn zeros(c: usize, h: usize, w: usize) -> Tensor {
        Tensor { c, h, w, data: vec![0.0; c * h * w] }
    }
    fn plane(&self, c: usize) -> &[f32] {
        &self.data[c * self.h * self.w..(c + 1) * self.h * self.w]
    }
}

/// Runs `g` on `input`.
pub(crate) fn run(g: &Graph, input: Tensor) -> Result<Tensor, String> {
    let mut blobs: Vec<Option<Tensor>> = vec![None; g.blobs];
    for node in &g.nodes {
        let get = |i: usize| blobs[i].clone().ok_or_else(|| format!("{}: input blob not computed", node.name));
        let outs: Vec<Tensor> = match &node.op {
            Op::Input => vec![input.clone()],
            Op::Conv(c) if c.transposed => vec![deconv(c, &get(node.inputs[0])?)],
            Op::Conv(c) => vec![conv(c, &get(node.inputs[0])?)],
            Op::Act(a) => vec![act(a, get(node.inputs[0])?)],
            Op::PixelShuffle(r) => vec![pixel_shuffle(*r, &get(node.inputs[0])?)],
            Op::Nearest(sh, sw) => vec![nearest(*sh, *sw, &get(node.inputs[0])?)],
            Op::Sum(coeffs) => vec![sum(coeffs, &node.inputs.iter().map(|&i| get(i)).collect::<Result<Vec<_>, _>>()?)?],
            Op::Affine { mul, add } => {
                let mut t = get(node.inputs[0])?;
                t.data.iter_mut().for_each(|v| *v = *v * mul + add);
                vec![t]
            }
            Op::Concat => vec![concat(&node.inputs.iter().map(|&i| get(i)).collect::<Result<Vec<_>, _>>()?)?],
            Op::Split => vec![get(node.inputs[0])?; node.outputs.len()],
        };
        for (&o, t) in node.outputs.iter().zip(outs) {
            blobs[o] = Some(t);
        }
    }
    blobs[g.output].take().ok_or_else(|| "the output blob was not computed".into())
}

fn activate(a: &Act, c: usize, v: f32) -> f32 {
    match a {
        Act::None => v,
        Act::Leaky(s) => {
            if v < 0.0 {
                v * s
            } else {
                v
            }
        }
        Act::PRelu(s) => {
            if v < 0.0 {
                v * s[if s.len() == 1 { 0 } else { c }]
            } else {
                v
            }
        }
    }
}

fn act(a: &Act, mut t: Tensor) -> Tensor {
    let plane = t.h * t.w;
    for (i, v) in t.data.iter_mut().enumerate() {
        *v = activate(a, i / plane, *v);
    }
    t
}

fn conv(c: &Conv, x: &Tensor) -> Tensor {
    let dk = c.dilation * (c.kernel - 1) + 1;
    let (ph, pw) = (x.h + c.pad[1] + c.pad[3], x.w + c.pad[0] + c.pad[2]);
    let oh = (ph.saturating_sub(dk)) / c.stride + 1;
    let ow = (pw.saturating_sub(dk)) / c.stride + 1;
    let mut out = Tensor::zeros(c.cout, oh, ow);
    let k = c.kernel;
    for p in 0..c.cout {
        let mut acc = vec![c.bias[p]; oh * ow];
        for q in 0..c.cin {
            let src = x.plane(q);
            for ky in 0..k {
                for kx in 0..k {
                    let wv = c.weights[((p * c.cin + q) * k + ky) * k + kx];
                    for oy in 0..oh {
                        let iy = (oy * c.stride + ky * c.dilation) as isize - c.pad[1] as isize;
                        if iy < 0 || iy >= x.h as isize {
                            continue;
                        }
                        let row = &src[iy as usize * x.w..][..x.w];
                        for ox in 0..ow {
                            let ix = (ox * c.stride + kx * c.dilation) as isize - c.pad[0] as isize;
                            if ix >= 0 && ix < x.w as isize {
                                acc[oy * ow + ox] += wv * row[ix as usize];
                            }
                        }
                    }
                }
            }
        }
        for (o, a) in out.data[p * oh * ow..(p + 1) * oh * ow].iter_mut().zip(acc) {
            *o = activate(&c.act, p, a);
        }
    }
    out
}

fn deconv(c: &Conv, x: &Tensor) -> Tensor {
    let dk = c.dilation * (c.kernel - 1) + 1;
    let (fh, fw) = ((x.h - 1) * c.stride + dk, (x.w - 1) * c.stride + dk);
    let k = c.kernel;
    let mut full = vec![0f32; c.cout * fh * fw];
    for p in 0..c.cout {
        for q in 0..c.cin {
            let src = x.plane(q);
            for ky in 0..k {
                for kx in 0..k {
                    let wv = c.weights[((p * c.cin + q) * k + ky) * k + kx];
                    for iy in 0..x.h {
                        let oy = iy * c.stride + ky * c.dilation;
                        for ix in 0..x.w {
                            let ox = ix * c.stride + kx * c.dilation;
                            full[(p * fh + oy) * fw + ox] += wv * src[iy * x.w + ix];
                        }
                    }
                }
            }
        }
    }
    let (oh, ow) = (fh - c.pad[1] - c.pad[3], fw - c.pad[0] - c.pad[2]);
    let mut out = Tensor::zeros(c.cout, oh, ow);
    for p in 0..c.cout {
        for y in 0..oh {
            for x2 in 0..ow {
                let v = full[(p * fh + y + c.pad[1]) * fw + x2 + c.pad[0]] + c.bias[p];
                out.data[(p * oh + y) * ow + x2] = activate(&c.act, p, v);
            }
        }
    }
    out
}

fn pixel_shuffle(r: usize, x: &Tensor) -> Tensor {
    let oc = x.c / (r * r);
    let mut out = Tensor::zeros(oc, x.h * r, x.w * r);
    for c in 0..oc {
        for i in 0..r {
            for j in 0..r {
                let src = x.plane(c * r * r + i * r + j);
                for y in 0..x.h {
                    for xx in 0..x.w {
                        out.data[(c * x.h * r + y * r + i) * x.w * r + xx * r + j] = src[y * x.w + xx];
                    }
                }
            }
        }
    }
    out
}

fn nearest(sh: usize, sw: usize, x: &Tensor) -> Tensor {
    let mut out = Tensor::zeros(x.c, x.h * sh, x.w * sw);
    for c in 0..x.c {
        for y in 0..x.h * sh {
            for xx in 0..x.w * sw {
                out.data[(c * x.h * sh + y) * x.w * sw + xx] = x.data[(c * x.h + y / sh) * x.w + xx / sw];
            }
        }
    }
    out
}

fn sum(coeffs: &[f32], xs: &[Tensor]) -> Result<Tensor, String> {
    let mut out = Tensor::zeros(xs[0].c, xs[0].h, xs[0].w);
    for (x, &k) in xs.iter().zip(coeffs) {
        if (x.c, x.h, x.w) != (out.c, out.h, out.w) {
            return Err(format!("sum of {}x{}x{} and {}x{}x{}", x.c, x.h, x.w, out.c, out.h, out.w));
        }
        out.data.iter_mut().zip(&x.data).for_each(|(o, v)| *o += k * v);
    }
    Ok(out)
}

fn concat(xs: &[Tensor]) -> Result<Tensor, String> {
    if xs.iter().any(|x| (x.h, x.w) != (xs[0].h, xs[0].w)) {
        return Err("concatenation of blobs of different sizes".into());
    }
    let c = xs.iter().map(|x| x.c).sum();
    Ok(Tensor { c, h: xs[0].h, w: xs[0].w, data: xs.iter().flat_map(|x| x.data.iter().copied()).collect() })
}
