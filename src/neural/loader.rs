//! Reading a network: each ncnn layer checked and turned into the graph's operations (with
//! its weights and output shape), then the fusions and lowerings that leave the engines fewer,
//! simpler nodes (activations into convolutions, affine chains into one, strided convolutions
//! into space to depth and a stride-1 convolution).

use super::elementwise::{Func, Map};
use super::fusion::{fuse_activations, fuse_affines};
use super::graph::{Act, ConstantInputs, Conv, Graph, Node, Op, Resize, Shape, MAX_CONSTANT_INPUTS};
use super::param::LayerLine;
use super::unet::{self, Fc, Se};
use super::weights::WeightReader;
use std::collections::HashMap;

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
    // Vectors of channel values (global pooling, then fully connected layers): the pooled
    // blob and the layers so far.
    let mut vectors: HashMap<String, (usize, Vec<Fc>, usize)> = HashMap::new();
    for l in layers {
        if matches!(l.kind.as_str(), "Pooling" | "InnerProduct") {
            if ids.contains_key(&l.outputs[0]) || constants.contains_key(&l.outputs[0]) {
                return Err(format!("line {}: blob {:?} is made twice", l.line, l.outputs[0]));
            }
            vector_layer(l, &ids, &shapes, &mut vectors, &mut consumers, &mut w)?;
            continue;
        }
        if l.kind == "MemoryData" {
            let v = memory_data(l, &mut w)?;
            if ids.contains_key(&l.outputs[0]) || constants.insert(l.outputs[0].clone(), v).is_some() {
                return Err(format!("line {}: blob {:?} is made twice", l.line, l.outputs[0]));
            }
            continue;
        }
        let used = l.inputs.iter().find_map(|b| vectors.remove(b));
        let (ins, constant) = match used {
            Some(_) => (l.inputs.iter().filter_map(|b| ids.get(b).copied()).collect(), None),
            None => inputs_of(l, &ids, &constants)?,
        };
        for &i in &ins {
            consumers[i] += 1;
        }
        let in_shapes: Vec<Shape> = ins.iter().map(|&i| shapes[i]).collect();
        let (op, out) = match (used, constant) {
            (Some(v), _) => se_block(l, &in_shapes, v)?,
            (None, Some(k)) => binary(l, &in_shapes, Some(k))?,
            (None, None) => layer(l, &in_shapes, &mut w, &mut macs)?,
        };
        let ins = match &op {
            Op::Se(se) => vec![ins[0], se.pooled],
            _ => ins,
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
    if let Some(name) = vectors.keys().next() {
        return Err(format!("the channel values {name:?} multiply no blob (only SE blocks are supported)"));
    }
    let input = input.ok_or("the network has no Input layer")?;
    let output = check_ends(&nodes, &shapes, &consumers, input)?;
    let s = shapes[output];
    let nodes = lower_strided(fuse_affines(fuse_activations(nodes, &consumers), &consumers), &mut shapes);
    let (sizes, radii) =
        (shapes.iter().map(|s| (s.channels, s.num, s.den)).collect(), shapes.iter().map(|s| s.radius).collect());
    let (scale, halo) = (s.num, s.radius.ceil() as usize);
    Ok(Graph { nodes, blobs: shapes.len(), input, output, scale, halo, macs_per_pixel: macs, sizes, radii })
}

/// The network's output blob, checked: one end, 3 channels at an integer scale; constant
/// input channels only on convolutions of the input.
fn check_ends(nodes: &[Node], shapes: &[Shape], consumers: &[usize], input: usize) -> Result<usize, String> {
    for n in nodes {
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
    Ok(output)
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
        "Eltwise" => eltwise(l, ins),
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
        "Crop" => {
            need(l, ins, 1)?;
            Ok((Op::Crop(unet::crop(l)?), ins[0]))
        }
        other => Err(at(format!("layer type {other:?} is not supported (supported: Input, Convolution, Deconvolution, ReLU, PReLU, PixelShuffle, Interp nearest/bicubic, BinaryOp add/sub/mul, MemoryData, Sigmoid, Swish, Eltwise sum, Split, Concat, Crop, and global average Pooling with InnerProduct layers as SE blocks)"))),
    }
}

/// An `Eltwise` sum of blobs of one shape (with coefficients).
fn eltwise(l: &LayerLine, ins: &[Shape]) -> Result<(Op, Shape), String> {
    let at = |m: String| format!("line {}: {} {}: {m}", l.line, l.kind, l.name);
    l.only(&[0, 1])?;
    if l.int(0, 1)? != 1
        || ins.len() < 2
        || ins.iter().any(|s| s.channels != ins[0].channels || s.num * ins[0].den != ins[0].num * s.den)
    {
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
    let p = l.int(4, 0)?;
    let pad = [p, l.int(14, p)?, l.int(15, p)?, l.int(16, l.int(14, p)?)?];
    if pad.iter().any(|&v| !(0..=64).contains(&v)) || (!transposed && pad.iter().any(|&v| v != pad[0])) {
        return Err(at(format!("padding {pad:?} is not supported")));
    }
    if stride != 1 && !transposed && (p != 0 || d != 1 || k % stride != 0) {
        return Err(at("only strided convolutions without padding or dilation, of a kernel a multiple of the stride, are supported".into()));
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
    let (weights, kernel, pad) = match transposed && d == 1 {
        true => unet::widen_deconv(weights, cout, s.channels, k, stride, pad),
        false => (weights, k, pad),
    };
    let out = if !transposed && stride > 1 {
        *macs += (n as f64 * blob_px) as u64 / (stride * stride) as u64;
        let radius = s.radius + reach * s.den as f64 / s.num as f64;
        Shape { channels: cout, radius, ..ratio(s.num, s.den * stride, s) }
    } else if transposed {
        *macs += (n as f64 * blob_px) as u64;
        let radius = s.radius + reach / stride as f64 * s.den as f64 / s.num as f64;
        Shape { channels: cout, radius, ..ratio(s.num * stride, s.den, s) }
    } else {
        *macs += (n as f64 * blob_px) as u64;
        Shape { channels: cout, radius: s.radius + reach * s.den as f64 / s.num as f64, ..s }
    };
    let c = Conv {
        cin: s.channels,
        cout,
        kernel,
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

/// `s` at the size `num / den` of the input's, in lowest terms.
fn ratio(num: usize, den: usize, s: Shape) -> Shape {
    let g = gcd(num, den).max(1);
    Shape { num: num / g, den: den / g, ..s }
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

/// A global pooling or fully connected layer: records the vector it makes (the pooled blob,
/// the fully connected layers so far, the vector's length) in `vectors`; a pooling counts as a
/// reader of its blob.
fn vector_layer(
    l: &LayerLine,
    ids: &HashMap<String, usize>,
    shapes: &[Shape],
    vectors: &mut HashMap<String, (usize, Vec<Fc>, usize)>,
    consumers: &mut [usize],
    w: &mut WeightReader,
) -> Result<(), String> {
    let v = vector_of(l, ids, shapes, vectors, w)?;
    if l.kind == "Pooling" {
        consumers[v.0] += 1;
    }
    if vectors.insert(l.outputs[0].clone(), v).is_some() {
        return Err(format!("line {}: blob {:?} is made twice", l.line, l.outputs[0]));
    }
    Ok(())
}

fn vector_of(
    l: &LayerLine,
    ids: &HashMap<String, usize>,
    shapes: &[Shape],
    vectors: &mut HashMap<String, (usize, Vec<Fc>, usize)>,
    w: &mut WeightReader,
) -> Result<(usize, Vec<Fc>, usize), String> {
    let [input] = &l.inputs[..] else { return Err(format!("line {}: {} {} takes one input", l.line, l.kind, l.name)) };
    if l.outputs.len() != 1 {
        return Err(format!("line {}: {} {} makes one output", l.line, l.kind, l.name));
    }
    if l.kind == "Pooling" {
        unet::global_average(l)?;
        let b = ids.get(input).copied().ok_or_else(|| format!("line {}: Pooling {} reads no blob", l.line, l.name))?;
        return Ok((b, Vec::new(), shapes[b].channels));
    }
    let (pooled, mut fcs, n) = vectors
        .remove(input)
        .ok_or_else(|| format!("line {}: InnerProduct {}: only of a global pooling is supported", l.line, l.name))?;
    let fc = unet::inner_product(l, n, w)?;
    let out = fc.cout;
    fcs.push(fc);
    Ok((pooled, fcs, out))
}

/// A SE block: a BinaryOp multiplying a blob by the vector `v` made from a blob of its shape.
fn se_block(l: &LayerLine, ins: &[Shape], (pooled, layers, n): (usize, Vec<Fc>, usize)) -> Result<(Op, Shape), String> {
    let ok = l.kind == "BinaryOp" && l.int(0, 0)? == 2 && l.int(1, 0)? == 0 && l.inputs.len() == 2;
    match ins {
        [x] if ok && x.channels == n && !layers.is_empty() => Ok((Op::Se(Se { pooled, layers }), *x)),
        _ => Err(format!(
            "line {}: {} {}: channel values from a global pooling may only multiply a blob of as many \
             channels, after fully connected layers (a SE block)",
            l.line, l.kind, l.name
        )),
    }
}

/// Each strided convolution (kernel a multiple of its stride `s`, no padding) as space to
/// depth by `s` and a stride-1 convolution of kernel `k / s` over `s²` times the channels:
/// the same sums, on the kernels every other layer uses. Adds a blob per such layer.
fn lower_strided(nodes: Vec<Node>, shapes: &mut Vec<Shape>) -> Vec<Node> {
    let mut out = Vec::with_capacity(nodes.len());
    for mut node in nodes {
        let Op::Conv(c) = &mut node.op else {
            out.push(node);
            continue;
        };
        if c.transposed || c.stride == 1 {
            out.push(node);
            continue;
        }
        let (s, m, x) = (c.stride, c.kernel / c.stride, node.inputs[0]);
        let cin = c.cin * s * s;
        let mut w = vec![0f32; c.cout * cin * m * m];
        for (i, &v) in c.weights.iter().enumerate() {
            let (kx, ky, q, o) = (
                i % c.kernel,
                i / c.kernel % c.kernel,
                i / (c.kernel * c.kernel) % c.cin,
                i / (c.kernel * c.kernel * c.cin),
            );
            let ch = (q * s + ky % s) * s + kx % s;
            w[((o * cin + ch) * m + ky / s) * m + kx / s] = v;
        }
        let xs = shapes[x];
        let reach = (s - 1) as f64 / 2.0 * xs.den as f64 / xs.num as f64;
        shapes.push(Shape { channels: cin, radius: xs.radius + reach, ..ratio(xs.num, xs.den * s, xs) });
        let mid = shapes.len() - 1;
        out.push(Node {
            name: format!("{} (space to depth)", node.name),
            op: Op::SpaceToDepth(s),
            inputs: vec![x],
            outputs: vec![mid],
        });
        (c.cin, c.kernel, c.stride, c.weights) = (cin, m, 1, w);
        node.inputs = vec![mid];
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
