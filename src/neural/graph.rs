//! A validated network: the supported ncnn layers with their weights, in execution order, with
//! every blob's channel count and scale checked, and the two numbers the tiler needs — the
//! receptive radius (the halo of a tile, in input pixels) and the cost per input pixel.

use super::elementwise::{at, Func, Map};
use super::param::LayerLine;
use super::weights::WeightReader;
use std::collections::HashMap;

/// An activation applied after a convolution or as a layer of its own.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Act {
    None,
    /// `max(x, 0) + slope · min(x, 0)` (ReLU when the slope is 0).
    Leaky(f32),
    /// Per-channel slopes.
    PRelu(Vec<f32>),
}

/// The most constant channels a model may take (SRMD's 15 and a noise level).
const MAX_CONSTANT_INPUTS: usize = 16;

/// A 2-D convolution (or, with `transposed`, a deconvolution applied as a scatter).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conv {
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    /// Left, top, right, bottom padding (deconvolution: cropping of the output).
    pub pad: [usize; 4],
    /// `[out][in][kh][kw]`.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub act: Act,
    pub transposed: bool,
    /// Input channels beyond the image's three that are constant over the image (SRMD's
    /// degradation and noise maps): their weights, kept to be folded into the bias.
    pub constant_inputs: Option<ConstantInputs>,
}

/// The weights of a first convolution's constant input channels (`[out][extra][kh][kw]`) and
/// its bias before they were folded in ([`Graph::fold_constant_inputs`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConstantInputs {
    pub channels: usize,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
}

/// One supported operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Input,
    Conv(Conv),
    Act(Act),
    /// Depth to space by `r`.
    PixelShuffle(usize),
    /// Nearest-neighbour enlargement by integer factors (height, width).
    Nearest(usize, usize),
    /// Bicubic resize (ncnn's `Interp` mode 3) by `num / den` on both axes.
    Resize(Resize),
    /// Sum of the inputs, each times its coefficient.
    Sum(Vec<f32>),
    /// `x · mul[c] + add[c]` on every value of channel `c` (one value each: every channel's).
    Affine {
        mul: Vec<f32>,
        add: Vec<f32>,
    },
    /// A function of every value ([`Map`]).
    Map(Map),
    /// The product of two blobs of one shape.
    Product,
    /// Channel concatenation.
    Concat,
    /// Copies of the input.
    Split,
}

/// A bicubic resize by the rational factor `num / den` (in lowest terms), both axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resize {
    pub num: usize,
    pub den: usize,
}

/// A node: its operation, input blobs and output blobs (indices).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
}

/// Shape of a blob relative to the network's input: channels, and its size as a rational
/// multiple of the input size (`num / den`), exact for the supported ops.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Shape {
    channels: usize,
    num: usize,
    den: usize,
    /// Receptive radius so far, in input pixels.
    radius: f64,
}

/// The network.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Graph {
    pub nodes: Vec<Node>,
    pub blobs: usize,
    pub input: usize,
    pub output: usize,
    /// Output pixels per input pixel (per axis).
    pub scale: usize,
    /// Input pixels of context each output pixel needs on every side.
    pub halo: usize,
    /// Multiply-adds per input pixel.
    pub macs_per_pixel: u64,
    /// Per blob: channels, and its size as `num / den` of the input's.
    pub sizes: Vec<(usize, usize, usize)>,
    /// Per blob: its receptive radius in input pixels (how far its window has shrunk, per
    /// side, from the input's wherever it does not meet the image's edge).
    pub radii: Vec<f64>,
}

/// A layer's input blobs, and the MemoryData constant it reads (its position among the
/// inputs, and its values), if any — which only a BinaryOp may.
type ConstantInput = Option<(usize, Vec<f32>)>;
fn inputs_of(
    l: &LayerLine,
    ids: &HashMap<String, usize>,
    constants: &HashMap<String, Vec<f32>>,
) -> Result<(Vec<usize>, ConstantInput), String> {
    let constant = l.inputs.iter().position(|b| constants.contains_key(b));
    let constant = constant.map(|k| (k, constants[&l.inputs[k]].clone()));
    if constant.is_some() && l.kind != "BinaryOp" {
        return Err(format!("line {}: {} {} reads a MemoryData constant (only BinaryOp may)", l.line, l.kind, l.name));
    }
    let ins = l
        .inputs
        .iter()
        .filter(|b| !constants.contains_key(*b))
        .map(|b| {
            ids.get(b)
                .copied()
                .ok_or_else(|| format!("line {}: {} reads blob {b:?}, which no earlier layer makes", l.line, l.name))
        })
        .collect::<Result<_, _>>()?;
    Ok((ins, constant))
}

/// Folds each activation layer into the convolution before it, where it is that
/// convolution's only reader and the convolution has no activation of its own: the same
/// values, one pass fewer over the blob.
fn fuse_activations(nodes: Vec<Node>, consumers: &[usize]) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::with_capacity(nodes.len());
    for node in nodes {
        if let (Op::Act(a), [b]) = (&node.op, &node.inputs[..]) {
            if let Some(prev) = out.last_mut() {
                if let (Op::Conv(c), [pb]) = (&mut prev.op, &prev.outputs[..]) {
                    if pb == b && consumers[*b] == 1 && c.act == Act::None {
                        c.act = a.clone();
                        prev.outputs = node.outputs.clone();
                        continue;
                    }
                }
            }
        }
        out.push(node);
    }
    out
}

/// Builds and validates the graph of `layers`, reading weights from `bin`.
pub(crate) fn build(layers: &[super::param::LayerLine], bin: &[u8]) -> Result<Graph, String> {
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut shapes: Vec<Shape> = Vec::new();
    let mut consumers: Vec<usize> = Vec::new();
    let mut w = WeightReader::new(bin);
    let mut nodes = Vec::new();
    let mut input = None;
    let mut macs = 0u64;
    // MemoryData blobs: constants (of one value per channel) that BinaryOp layers read.
    let mut constants: HashMap<String, Vec<f32>> = HashMap::new();
    for l in layers {
        if l.kind == "MemoryData" {
            let v = memory_data(l, &mut w)?;
            if ids.contains_key(&l.outputs[0]) || constants.insert(l.outputs[0].clone(), v).is_some() {
                return Err(format!("line {}: blob {:?} is made twice", l.line, l.outputs[0]));
            }
            continue;
        }
        let (ins, constant) = inputs_of(l, &ids, &constants)?;
        for &i in &ins {
            consumers[i] += 1;
        }
        let in_shapes: Vec<Shape> = ins.iter().map(|&i| shapes[i]).collect();
        let (op, out) = match constant {
            Some(k) => binary(l, &in_shapes, Some(k))?,
            None => layer(l, &in_shapes, &mut w, &mut macs)?,
        };
        if matches!(op, Op::Input) {
            if input.is_some() {
                return Err(format!("line {}: a second Input layer", l.line));
            }
            input = Some(shapes.len());
        }
        let outs: Vec<usize> = (0..l.outputs.len()).map(|k| shapes.len() + k).collect();
        for (name, &o) in l.outputs.iter().zip(&outs) {
            if constants.contains_key(name) || ids.insert(name.clone(), o).is_some() {
                return Err(format!("line {}: blob {name:?} is made twice", l.line));
            }
            shapes.push(out);
            consumers.push(0);
        }
        nodes.push(Node { name: l.name.clone(), op, inputs: ins, outputs: outs });
    }
    w.finish()?;
    let input = input.ok_or("the network has no Input layer")?;
    for n in &nodes {
        if matches!(&n.op, Op::Conv(c) if c.constant_inputs.is_some()) && n.inputs != [input] {
            return Err(format!("{}: only a convolution of the input may take constant input channels", n.name));
        }
    }
    let ends: Vec<usize> = (0..shapes.len()).filter(|&b| consumers[b] == 0).collect();
    let [output] = ends[..] else { return Err(format!("the network must end in one blob, it ends in {}", ends.len())) };
    let s = shapes[output];
    if s.channels != shapes[input].channels || s.den != 1 || s.num == 0 {
        return Err(format!(
            "the output has {} channels at scale {}/{}; an upscaler maps 3 channels to 3 at an integer scale",
            s.channels, s.num, s.den
        ));
    }
    Ok(Graph {
        nodes: fuse_affines(fuse_activations(nodes, &consumers), &consumers),
        blobs: shapes.len(),
        input,
        output,
        scale: s.num,
        halo: s.radius.ceil() as usize,
        macs_per_pixel: macs,
        sizes: shapes.iter().map(|s| (s.channels, s.num, s.den)).collect(),
        radii: shapes.iter().map(|s| s.radius).collect(),
    })
}

fn need(l: &LayerLine, ins: &[Shape], n: usize) -> Result<(), String> {
    if ins.len() != n || l.outputs.len() != 1 && l.kind != "Split" {
        return Err(format!("line {}: {} {} takes {n} input(s) and one output", l.line, l.kind, l.name));
    }
    Ok(())
}

/// One layer's operation and output shape; weights are read from `w`, cost added to `macs`.
fn layer(l: &LayerLine, ins: &[Shape], w: &mut WeightReader, macs: &mut u64) -> Result<(Op, Shape), String> {
    let at = |m: String| format!("line {}: {} {}: {m}", l.line, l.kind, l.name);
    match l.kind.as_str() {
        "Input" => {
            l.only(&[0, 1, 2])?;
            let c = l.int(2, 3)?;
            if c != 3 {
                return Err(at(format!("{c} input channels (RGB models only)")));
            }
            Ok((Op::Input, Shape { channels: 3, num: 1, den: 1, radius: 0.0 }))
        }
        "Convolution" | "Deconvolution" => conv(l, ins, w, macs),
        "ReLU" => {
            need(l, ins, 1)?;
            l.only(&[0])?;
            Ok((Op::Act(Act::Leaky(l.float(0, 0.0)? as f32)), ins[0]))
        }
        "PReLU" => {
            need(l, ins, 1)?;
            l.only(&[0])?;
            let n = l.int(0, 1)? as usize;
            if n != ins[0].channels && n != 1 {
                return Err(at(format!("{n} slopes for {} channels", ins[0].channels)));
            }
            let slopes = w.raw(n, &l.name)?;
            Ok((Op::Act(Act::PRelu(slopes)), ins[0]))
        }
        "PixelShuffle" => {
            need(l, ins, 1)?;
            l.only(&[0])?;
            let r = l.int(0, 1)?;
            let s = ins[0];
            if !(1..=8).contains(&r) || !s.channels.is_multiple_of((r * r) as usize) {
                return Err(at(format!("factor {r} for {} channels", s.channels)));
            }
            let r = r as usize;
            Ok((Op::PixelShuffle(r), Shape { channels: s.channels / (r * r), num: s.num * r, ..s }))
        }
        "Interp" => interp(l, ins),
        "BinaryOp" => binary(l, ins, None),
        "Sigmoid" | "Swish" => {
            need(l, ins, 1)?;
            l.only(&[])?;
            let f = if l.kind == "Sigmoid" { Func::Sigmoid } else { Func::Swish };
            Ok((Op::Map(Map { f, mul: 1.0, add: 0.0 }), ins[0]))
        }
        "Eltwise" => {
            l.only(&[0, 1])?;
            if l.int(0, 1)? != 1 || ins.len() < 2 || ins.iter().any(|s| s.channels != ins[0].channels || s.num * ins[0].den != ins[0].num * s.den) {
                return Err(at("only sums of blobs of one shape are supported".into()));
            }
            let mut c: Vec<f32> = l.array(1)?.iter().map(|&v| v as f32).collect();
            if c.is_empty() {
                c = vec![1.0; ins.len()];
            }
            if c.len() != ins.len() {
                return Err(at(format!("{} coefficients for {} inputs", c.len(), ins.len())));
            }
            Ok((Op::Sum(c), merge(ins)))
        }
        "Split" => {
            l.only(&[])?;
            if ins.len() != 1 || l.outputs.is_empty() {
                return Err(at("takes one input".into()));
            }
            Ok((Op::Split, ins[0]))
        }
        "Concat" => {
            l.only(&[0])?;
            if l.int(0, 0)? != 0 || ins.len() < 2 || ins.iter().any(|s| s.num * ins[0].den != ins[0].num * s.den) {
                return Err(at("only channel concatenation of blobs of one size is supported".into()));
            }
            let channels = ins.iter().map(|s| s.channels).sum();
            Ok((Op::Concat, Shape { channels, ..merge(ins) }))
        }
        other => Err(at(format!("layer type {other:?} is not supported (supported: Input, Convolution, Deconvolution, ReLU, PReLU, PixelShuffle, Interp nearest/bicubic, BinaryOp add/sub/mul, MemoryData, Sigmoid, Swish, Eltwise sum, Split, Concat)"))),
    }
}

/// The shape of an elementwise combination: the widest receptive radius.
fn merge(ins: &[Shape]) -> Shape {
    let radius = ins.iter().map(|s| s.radius).fold(0.0, f64::max);
    Shape { radius, ..ins[0] }
}

fn conv(l: &LayerLine, ins: &[Shape], w: &mut WeightReader, macs: &mut u64) -> Result<(Op, Shape), String> {
    let at = |m: String| format!("line {}: {} {}: {m}", l.line, l.kind, l.name);
    need(l, ins, 1)?;
    let transposed = l.kind == "Deconvolution";
    l.only(&[0, 1, 11, 2, 12, 3, 13, 4, 14, 15, 16, 5, 6, 9, 10])?;
    let s = ins[0];
    let (cout, k, d, stride) = (l.int(0, 0)?, l.int(1, 0)?, l.int(2, 1)?, l.int(3, 1)?);
    if l.int(11, k)? != k || l.int(12, d)? != d || l.int(13, stride)? != stride {
        return Err(at("only square kernels, dilations and strides are supported".into()));
    }
    if !(1..=4096).contains(&cout) || !(1..=15).contains(&k) || !(1..=4).contains(&d) || !(1..=4).contains(&stride) {
        return Err(at(format!("num_output {cout}, kernel {k}, dilation {d}, stride {stride} out of range")));
    }
    if stride != 1 && !transposed {
        return Err(at("strided convolutions are not supported".into()));
    }
    let p = l.int(4, 0)?;
    let pad = [p, l.int(14, p)?, l.int(15, p)?, l.int(16, l.int(14, p)?)?];
    if pad.iter().any(|&v| !(0..=64).contains(&v)) || (!transposed && pad.iter().any(|&v| v != pad[0])) {
        return Err(at(format!("padding {pad:?} is not supported")));
    }
    let (cout, k, d, stride) = (cout as usize, k as usize, d as usize, stride as usize);
    let pad = pad.map(|v| v as usize);
    let n = cout * s.channels * k * k;
    let given = l.int(6, 0)? as usize;
    // A first convolution may read more channels than the image's three: constant maps the
    // model takes beside the image (SRMD: 15 degradation values and a noise level).
    let extra = match given.checked_div(cout * k * k) {
        Some(cin) if given.is_multiple_of(cout * k * k) && s.channels == 3 && s.radius == 0.0 && !transposed => {
            cin.saturating_sub(3)
        }
        _ => 0,
    };
    if extra > MAX_CONSTANT_INPUTS || given != n + cout * extra * k * k {
        return Err(at(format!("weight_data_size {given} but {cout}x{}x{k}x{k} = {n}", s.channels)));
    }
    let act = match (l.int(9, 0)?, l.array(10)?.as_slice()) {
        (0, []) => Act::None,
        (1, []) => Act::Leaky(0.0),
        (2, [slope]) => Act::Leaky(*slope as f32),
        (a, p) => return Err(at(format!("activation {a} with parameters {p:?} is not supported"))),
    };
    let all = w.tagged(given, &l.name)?;
    let bias = if l.int(5, 0)? != 0 { w.raw(cout, &format!("{} bias", l.name))? } else { vec![0.0; cout] };
    let (weights, constant_inputs) = split_constant_inputs(all, cout, 3, extra, k * k, &bias);
    let blob_px = (s.num * s.num) as f64 / (s.den * s.den) as f64;
    let reach = (d * (k - 1)) as f64 / 2.0;
    let out = if transposed {
        *macs += (n as f64 * blob_px) as u64;
        let radius = s.radius + reach / stride as f64 * s.den as f64 / s.num as f64;
        Shape { channels: cout, num: s.num * stride, den: s.den, radius }
    } else {
        *macs += (n as f64 * blob_px) as u64;
        Shape { channels: cout, radius: s.radius + reach * s.den as f64 / s.num as f64, ..s }
    };
    let c = Conv {
        cin: s.channels,
        cout,
        kernel: k,
        stride,
        dilation: d,
        pad,
        weights,
        bias,
        act,
        transposed,
        constant_inputs,
    };
    Ok((Op::Conv(c), out))
}

fn interp(l: &LayerLine, ins: &[Shape]) -> Result<(Op, Shape), String> {
    need(l, ins, 1)?;
    l.only(&[0, 1, 2])?;
    let (mode, sh, sw) = (l.int(0, 0)?, l.float(1, 1.0)?, l.float(2, 1.0)?);
    let int = |v: f64| (v.fract() == 0.0 && (1.0..=16.0).contains(&v)).then_some(v as usize);
    let s = ins[0];
    match (mode, int(sh), int(sw)) {
        (1, Some(h), Some(w)) if h == w => return Ok((Op::Nearest(h, w), Shape { num: s.num * h, ..s })),
        (3, ..) if sh == sw => {
            if let Some((num, den)) = rational(sh) {
                // The four taps reach two pixels each side, at this blob's resolution.
                let radius = s.radius + 2.0 * s.den as f64 / s.num as f64;
                let (n, d) = (s.num * num, s.den * den);
                let g = gcd(n, d);
                let shape = Shape { num: n / g, den: d / g, radius, ..s };
                return Ok((Op::Resize(Resize { num, den }), shape));
            }
        }
        _ => {}
    }
    Err(format!(
        "line {}: Interp {}: only nearest enlargement by one integer factor, or bicubic resizing by one \
         simple fraction, is supported (mode {mode}, scales {sh}x{sw})",
        l.line, l.name
    ))
}

/// `v` as `num / den` with both at most 16, if it is one.
fn rational(v: f64) -> Option<(usize, usize)> {
    (1..=16usize).find_map(|den| {
        let num = (v * den as f64).round();
        ((1.0..=16.0).contains(&num) && (num / den as f64 - v).abs() < 1e-6).then(|| {
            let g = gcd(num as usize, den);
            (num as usize / g, den / g)
        })
    })
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A BinaryOp: of two blobs of one shape (add, sub, mul), or of a blob and a scalar or a
/// MemoryData constant of one value per channel (`constant`: its input position and values;
/// add, sub, mul, reverse sub).
fn binary(l: &LayerLine, ins: &[Shape], constant: Option<(usize, Vec<f32>)>) -> Result<(Op, Shape), String> {
    l.only(&[0, 1, 2])?;
    let (op, scalar, b) = (l.int(0, 0)?, l.int(1, 0)?, l.float(2, 0.0)? as f32);
    let err = |m: &str| format!("line {}: BinaryOp {}: {m} (op {op}, with_scalar {scalar})", l.line, l.name);
    let (v, first) = match (scalar, constant, ins) {
        (0, None, [a, c]) if a.channels == c.channels && a.num * c.den == c.num * a.den => {
            return match op {
                0 => Ok((Op::Sum(vec![1.0, 1.0]), merge(ins))),
                1 => Ok((Op::Sum(vec![1.0, -1.0]), merge(ins))),
                2 => Ok((Op::Product, merge(ins))),
                _ => Err(err("only add, sub and mul of two blobs are supported")),
            };
        }
        (1, None, [_]) => (vec![b], true),
        (0, Some((k, v)), [a]) if l.inputs.len() == 2 && (v.len() == 1 || v.len() == a.channels) => (v, k == 1),
        _ => return Err(err("only two blobs of one shape, or a blob and a scalar or a per-channel constant")),
    };
    let n = v.len();
    let (mul, add) = match (op, first) {
        (0, _) => (vec![1.0], v),
        (1, true) => (vec![1.0], v.iter().map(|x| -x).collect()),
        (1, false) | (7, true) => (vec![-1.0], v),
        (2, _) => (v, vec![0.0]),
        _ => return Err(err("only add, sub, mul and reverse sub with a constant are supported")),
    };
    let spread = |x: Vec<f32>| if x.len() == n { x } else { vec![x[0]; n] };
    Ok((Op::Affine { mul: spread(mul), add: spread(add) }, ins[0]))
}

/// A MemoryData layer's values: one per channel (`w = h = 1`, or a row of `w`), raw f32.
fn memory_data(l: &LayerLine, w: &mut WeightReader) -> Result<Vec<f32>, String> {
    l.only(&[0, 1, 2])?;
    let (x, y, c) = (l.int(0, 0)?, l.int(1, 0)?, l.int(2, 0)?);
    let n = match (x, y, c) {
        (1, 1, c) if (1..=4096).contains(&c) => c,
        (x, 0, 0) if (1..=4096).contains(&x) => x,
        _ => {
            return Err(format!(
                "line {}: MemoryData {}: only one value per channel is supported ({x}x{y}x{c})",
                l.line, l.name
            ))
        }
    };
    if !l.inputs.is_empty() || l.outputs.len() != 1 {
        return Err(format!("line {}: MemoryData {} takes no input and one output", l.line, l.name));
    }
    w.raw(n as usize, &l.name)
}

/// Folds a scalar or per-channel affine layer into the affine layer or function before it,
/// where that layer is its only input's only maker and reader: the same values (up to f32
/// rounding), one pass and one rounding fewer.
fn fuse_affines(nodes: Vec<Node>, consumers: &[usize]) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::with_capacity(nodes.len());
    for node in nodes {
        if let (Op::Affine { mul, add }, [b]) = (&node.op, &node.inputs[..]) {
            if let Some(prev) = out.last_mut().filter(|p| p.outputs == [*b] && consumers[*b] == 1) {
                let folded = match &mut prev.op {
                    Op::Map(m) if mul.len() == 1 => {
                        (m.mul, m.add) = (m.mul * mul[0], m.add * mul[0] + add[0]);
                        true
                    }
                    Op::Affine { mul: m0, add: a0 } if m0.len() == mul.len() || mul.len() == 1 || m0.len() == 1 => {
                        let n = m0.len().max(mul.len());
                        let m: Vec<f32> = (0..n).map(|c| at(m0, c) * at(mul, c)).collect();
                        let a: Vec<f32> = (0..n).map(|c| at(a0, c) * at(mul, c) + at(add, c)).collect();
                        (*m0, *a0) = (m, a);
                        true
                    }
                    _ => false,
                };
                if folded {
                    prev.outputs = node.outputs.clone();
                    continue;
                }
            }
        }
        out.push(node);
    }
    out
}

/// Splits a convolution's weights (`[out][image + extra][taps]`) into the image channels'
/// and, when `extra > 0`, the constant channels' (with the bias they are folded into later).
fn split_constant_inputs(
    all: Vec<f32>,
    cout: usize,
    image: usize,
    extra: usize,
    taps: usize,
    bias: &[f32],
) -> (Vec<f32>, Option<ConstantInputs>) {
    if extra == 0 {
        return (all, None);
    }
    let per_out = (image + extra) * taps;
    let mut weights = Vec::with_capacity(cout * image * taps);
    let mut constant = Vec::with_capacity(cout * extra * taps);
    for o in all.chunks_exact(per_out) {
        weights.extend_from_slice(&o[..image * taps]);
        constant.extend_from_slice(&o[image * taps..]);
    }
    (weights, Some(ConstantInputs { channels: extra, weights: constant, bias: bias.to_vec() }))
}
