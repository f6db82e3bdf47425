//! A convolutional ONNX graph, checked at load and run in single floats: the operators of a
//! face detector (convolutions with groups, activations, feature-pyramid upsampling, the
//! heads' transposes, reshapes and softmax) and the small integer "shape" computations that
//! exporters emit around them (`Shape`, `Gather`, `Slice`, ...).
//!
//! The same walk runs *dry*: float tensors then carry their shapes but no data, which gives
//! the peak bytes a given input size needs (the memory plan) without computing anything.

use super::onnx::{self, NodeProto};
use super::ops;
use super::values::{ConvShape, Op, Tensor, Value};
use std::collections::HashMap;
use std::rc::Rc;

/// A node: operator, input names (`None`: omitted optional input), output names.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) op: Op,
    pub(crate) inputs: Vec<Option<String>>,
    pub(crate) outputs: Vec<String>,
}

/// A loaded graph: its nodes in order, constant values (weights, `Constant` nodes), the one
/// image input and the outputs.
#[derive(Debug)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Node>,
    consts: HashMap<String, Rc<Value>>,
    pub(crate) input: String,
    pub(crate) outputs: Vec<String>,
    /// For each value name, the index of the last node that reads it.
    last_use: HashMap<String, usize>,
}

/// What [`Graph::run_observed`] shows each node: the node, its arguments (shapes only), its
/// outputs.
pub(crate) type Observer<'a> = dyn FnMut(&Node, &[Option<Rc<Value>>], &[Value]) + 'a;

/// What a run gives: the outputs by name and the peak bytes of float tensors and scratch.
pub(crate) struct RunResult {
    pub(crate) outputs: Vec<Tensor>,
    pub(crate) peak_bytes: u64,
}

impl Graph {
    /// Loads and checks an ONNX model.
    pub(crate) fn from_onnx(bytes: &[u8]) -> Result<Graph, String> {
        let model = onnx::decode(bytes)?;
        let opset =
            model.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map_or(1, |o| o.version);
        let g = model.graph.ok_or("the model has no graph")?;
        let mut consts = HashMap::new();
        for t in &g.initializer {
            consts.insert(t.name.clone(), Rc::new(tensor_value(t)?));
        }
        let input = g
            .input
            .iter()
            .map(|i| i.name.clone())
            .find(|n| !consts.contains_key(n))
            .ok_or("the graph has no image input")?;
        let mut nodes = Vec::new();
        for n in &g.node {
            if !n.domain.is_empty() && n.domain != "ai.onnx" {
                return Err(format!("node {:?}: operator domain {:?} is not supported", n.name, n.domain));
            }
            if n.op_type == "Constant" {
                let t = attr(n, "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| format!("Constant {:?} has no tensor value", n.name))?;
                let out = n.output.first().ok_or_else(|| format!("Constant {:?} has no output", n.name))?;
                consts.insert(out.clone(), Rc::new(tensor_value(t)?));
                continue;
            }
            let op = parse_op(n, opset).map_err(|e| format!("node {:?} ({}): {e}", n.name, n.op_type))?;
            let inputs = n.input.iter().map(|s| (!s.is_empty()).then(|| s.clone())).collect();
            nodes.push(Node { name: n.name.clone(), op, inputs, outputs: n.output.clone() });
        }
        let outputs: Vec<String> = g.output.iter().map(|o| o.name.clone()).collect();
        let mut last_use = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for s in n.inputs.iter().flatten() {
                last_use.insert(s.clone(), i);
            }
        }
        let graph = Graph { nodes, consts, input, outputs, last_use };
        graph.check_wiring()?;
        Ok(graph)
    }

    /// Every input of every node is produced before it is read.
    fn check_wiring(&self) -> Result<(), String> {
        let mut known: std::collections::HashSet<&str> = self.consts.keys().map(String::as_str).collect();
        known.insert(&self.input);
        for n in &self.nodes {
            if let Some(missing) = n.inputs.iter().flatten().find(|s| !known.contains(s.as_str())) {
                return Err(format!("node {:?} reads {missing:?}, which no earlier node produces", n.name));
            }
            known.extend(n.outputs.iter().map(String::as_str));
        }
        match self.outputs.iter().find(|o| !known.contains(o.as_str())) {
            Some(o) => Err(format!("graph output {o:?} is never produced")),
            None => Ok(()),
        }
    }

    /// Runs the graph on `input` ([1, 3, H, W]; no data for a dry run). `pool` runs the
    /// convolutions' parallel parts.
    pub(crate) fn run(&self, input: Tensor, pool: &rayon::ThreadPool) -> Result<RunResult, String> {
        self.run_observed(input, pool, None)
    }

    /// [`Graph::run`], showing `observe` each node with its arguments (shapes only) and
    /// outputs.
    pub(crate) fn run_observed(
        &self,
        input: Tensor,
        pool: &rayon::ThreadPool,
        mut observe: Option<&mut Observer<'_>>,
    ) -> Result<RunResult, String> {
        let mut live: HashMap<&str, Rc<Value>> = HashMap::new();
        let mut live_bytes = input.bytes();
        let mut peak = live_bytes;
        live.insert(&self.input, Rc::new(Value::F(input)));
        for (i, n) in self.nodes.iter().enumerate() {
            let args: Vec<Option<Rc<Value>>> = n
                .inputs
                .iter()
                .map(|s| s.as_ref().and_then(|s| live.get(s.as_str()).or_else(|| self.consts.get(s)).cloned()))
                .collect();
            if n.inputs.iter().zip(&args).any(|(s, a)| s.is_some() && a.is_none()) {
                return Err(format!("node {:?}: an input is missing", n.name));
            }
            // Only an observer sees the arguments' shapes (the arguments themselves are consumed).
            let shapes: Option<Vec<Option<Rc<Value>>>> =
                observe.is_some().then(|| args.iter().map(|a| a.as_ref().map(|v| Rc::new(shape_only(v)))).collect());
            // What this node reads for the last time leaves the map now, so that the node
            // holds the only reference and an elementwise operator can work in place; it is
            // counted as live until the node is done.
            let mut dying = 0;
            for s in n.inputs.iter().flatten() {
                if self.last_use.get(s) == Some(&i) && !self.outputs.contains(s) {
                    dying += live.remove(s.as_str()).map_or(0, |v| value_bytes(&v));
                }
            }
            let (outs, scratch) = ops::apply(&n.op, args, pool).map_err(|e| format!("node {:?}: {e}", n.name))?;
            if let (Some(observe), Some(shapes)) = (observe.as_mut(), &shapes) {
                observe(n, shapes, &outs);
            }
            let produced: u64 = outs.iter().map(value_bytes).sum();
            peak = peak.max(live_bytes + produced + scratch);
            live_bytes = live_bytes + produced - dying;
            for (name, v) in n.outputs.iter().zip(outs) {
                live.insert(name, Rc::new(v));
            }
        }
        let mut outputs = Vec::new();
        for o in &self.outputs {
            match live.remove(o.as_str()).map(|v| Rc::try_unwrap(v).unwrap_or_else(|rc| (*rc).clone())) {
                Some(Value::F(t)) => outputs.push(t),
                _ => return Err(format!("graph output {o:?} is not a float tensor")),
            }
        }
        Ok(RunResult { outputs, peak_bytes: peak })
    }
}

/// A value's shape without its float data (integers kept: they are small).
fn shape_only(v: &Value) -> Value {
    match v {
        Value::F(t) => Value::F(Tensor::dry(t.shape.clone())),
        Value::I(s, d) => Value::I(s.clone(), d.clone()),
    }
}

/// Bytes a value's float data takes (integers are negligible and not counted).
fn value_bytes(v: &Value) -> u64 {
    match v {
        Value::F(t) => t.bytes(),
        Value::I(..) => 0,
    }
}

/// A weight or constant tensor as a value.
fn tensor_value(t: &onnx::TensorProto) -> Result<Value, String> {
    if t.data_location == 1 {
        return Err(format!("tensor {:?} keeps its data in an external file (not supported)", t.name));
    }
    let dims = onnx::dims_of(t)?;
    match t.data_type {
        onnx::FLOAT => Ok(Value::F(Tensor::new(dims, onnx::floats_of(t)?))),
        onnx::INT64 | onnx::INT32 => Ok(Value::I(dims, onnx::ints_of(t)?)),
        d => Err(format!("tensor {:?} has data type {d} (only float, int32 and int64 are supported)", t.name)),
    }
}

/// An attribute by name.
fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a onnx::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

/// An integer-list attribute, or `default`.
fn ints(n: &NodeProto, name: &str, default: &[i64]) -> Vec<i64> {
    attr(n, name).map_or_else(|| default.to_vec(), |a| a.ints.clone())
}

/// A string attribute, or `default`.
fn string(n: &NodeProto, name: &str, default: &str) -> String {
    attr(n, name).map_or_else(|| default.to_string(), |a| String::from_utf8_lossy(&a.s).into_owned())
}

/// Turns a node into an operator, refusing attributes this engine does not implement.
fn parse_op(n: &NodeProto, opset: i64) -> Result<Op, String> {
    let int = |name: &str, d: i64| attr(n, name).map_or(d, |a| a.i);
    Ok(match n.op_type.as_str() {
        "Conv" => Op::Conv(conv_shape(n)?),
        "Relu" => Op::Relu,
        "LeakyRelu" => Op::LeakyRelu(attr(n, "alpha").map_or(0.01, |a| a.f)),
        "Add" => Op::Add,
        "Concat" => Op::Concat(int("axis", 0)),
        "Shape" => Op::Shape,
        "Gather" => Op::Gather(int("axis", 0)),
        "Unsqueeze" => Op::Unsqueeze(ints(n, "axes", &[])),
        "Slice" if opset >= 10 => Op::Slice,
        "Cast" => match int("to", 0) {
            6 | 7 => Op::CastInt,
            t => return Err(format!("cast to data type {t} is not supported")),
        },
        "Resize" | "Upsample" => resize(n)?,
        "Transpose" => {
            let perm = ints(n, "perm", &[]);
            Op::Transpose(
                perm.iter()
                    .map(|&p| usize::try_from(p).map_err(|_| format!("bad permutation {perm:?}")))
                    .collect::<Result<_, _>>()?,
            )
        }
        "Reshape" => Op::Reshape,
        "Softmax" => Op::Softmax { axis: int("axis", if opset >= 13 { -1 } else { 1 }), flatten: opset < 13 },
        "Identity" => Op::Identity,
        other => return Err(format!("operator {other} is not supported by the face detector's engine")),
    })
}

/// `Resize`/`Upsample`: only nearest neighbour with asymmetric coordinates, rounding down.
fn resize(n: &NodeProto) -> Result<Op, String> {
    let mode = string(n, "mode", "nearest");
    let coords = string(n, "coordinate_transformation_mode", "asymmetric");
    let rounding = string(n, "nearest_mode", "round_prefer_floor");
    let floorish = rounding == "floor" || n.op_type == "Upsample";
    if mode != "nearest" || coords != "asymmetric" || !floorish {
        return Err(format!(
            "only nearest resizing with asymmetric coordinates rounding down is supported (mode {mode}, {coords}, {rounding})"
        ));
    }
    Ok(Op::ResizeNearest)
}

/// A convolution's kernel, strides, padding, dilation and groups (2-D only).
fn conv_shape(n: &NodeProto) -> Result<ConvShape, String> {
    let pair = |name: &str| -> Result<[usize; 2], String> {
        let v = ints(n, name, &[1, 1]);
        match v.as_slice() {
            [a, b] if *a >= 1 && *b >= 1 => Ok([*a as usize, *b as usize]),
            _ => Err(format!("{name} {v:?}: only 2-D convolutions are supported")),
        }
    };
    if string(n, "auto_pad", "NOTSET") != "NOTSET" {
        return Err("auto_pad is not supported (explicit pads only)".into());
    }
    let pads = ints(n, "pads", &[0, 0, 0, 0]);
    let [t, l, b, r] = match pads.as_slice() {
        [t, l, b, r] if pads.iter().all(|&p| (0..=64).contains(&p)) => [*t, *l, *b, *r].map(|p| p as usize),
        _ => return Err(format!("pads {pads:?} are not supported")),
    };
    let group =
        usize::try_from(attr(n, "group").map_or(1, |a| a.i)).ok().filter(|&g| g >= 1).ok_or("bad group count")?;
    Ok(ConvShape { stride: pair("strides")?, dilation: pair("dilations")?, pads: [t, l, b, r], group })
}

// How far a detector's results reach into the image: for every 4-D activation, the input
// rows and columns a pixel of it depends on, relative to the cell it covers. Worked out on a
// dry run (shapes only), so strides come from the shapes themselves and every exporter's
// way of writing an upsampling target is covered.
//
// A pixel `i` of an activation with stride `S` depends on input `[i·S + lo, i·S + hi]`. The
// image has `S = 1, lo = hi = 0`. A convolution with stride `s`, padding `p` before and a
// dilated span `K` reads input pixels `o·s - p ..= o·s - p + K - 1`, so `lo' = lo - p·S`,
// `hi' = hi + (K - 1 - p)·S`, `S' = s·S`. A nearest upsampling's pixel reads the input
// pixel at or before it: `lo' = lo - S` (bounding the shift), `hi' = hi`. Everything else
// (activations, sums, concatenations) takes the widest of its inputs.

/// Reach of one activation: stride and the offsets of its receptive region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reach {
    stride: i64,
    lo: i64,
    hi: i64,
}

/// The side a dry run uses to find the strides (divisible by every stride of a detector).
const PROBE: usize = 640;

/// The margin a tile needs around the cells it owns so that they see everything they depend
/// on: the widest reach of any activation, past its own cell.
pub(crate) fn margin(graph: &Graph, pool: &rayon::ThreadPool) -> Result<u32, String> {
    let mut reach: HashMap<String, Reach> = HashMap::new();
    reach.insert(graph.input.clone(), Reach { stride: 1, lo: 0, hi: 0 });
    let mut failure = None;
    let input = Tensor::dry(vec![1, 3, PROBE, PROBE]);
    graph.run_observed(
        input,
        pool,
        Some(&mut |node, args, outs| {
            let known: Vec<Reach> = node.inputs.iter().flatten().filter_map(|s| reach.get(s).copied()).collect();
            let Some(widest) = known.iter().copied().reduce(|a, b| Reach {
                stride: a.stride.max(b.stride),
                lo: a.lo.min(b.lo),
                hi: a.hi.max(b.hi),
            }) else {
                return;
            };
            let r = match &node.op {
                Op::Conv(c) => conv_reach(widest, c, args.get(1).and_then(|a| a.as_deref())),
                Op::ResizeNearest => resize_reach(widest, args.first().and_then(|a| a.as_deref()), outs.first()),
                _ => Ok(widest),
            };
            match r {
                Ok(r) => node.outputs.iter().for_each(|o| {
                    reach.insert(o.clone(), r);
                }),
                Err(e) => failure = Some(format!("node {:?}: {e}", node.name)),
            }
        }),
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    let m = reach.values().map(|r| (-r.lo).max(r.hi - r.stride + 1)).max().unwrap_or(0).max(0);
    let m = u32::try_from(m).map_err(|_| "the receptive field is too wide")?;
    Ok(m.div_ceil(32) * 32)
}

/// A convolution's reach, from its weights' kernel size.
fn conv_reach(r: Reach, c: &ConvShape, w: Option<&Value>) -> Result<Reach, String> {
    let Some(Value::F(w)) = w else { return Err("weights are not a float tensor".into()) };
    let (kh, kw) = match w.shape.as_slice() {
        [_, _, kh, kw] => (*kh as i64, *kw as i64),
        _ => return Err("weights are not 4-D".into()),
    };
    let span = |k: i64, d: usize| d as i64 * (k - 1) + 1;
    let (ky, kx) = (span(kh, c.dilation[0]), span(kw, c.dilation[1]));
    let (p0, p1) = (c.pads[0].max(c.pads[1]) as i64, c.pads[0].min(c.pads[1]) as i64);
    let k_last = ky.max(kx) - 1;
    Ok(Reach {
        stride: r.stride * c.stride[0].max(c.stride[1]) as i64,
        lo: r.lo - p0 * r.stride,
        hi: r.hi + (k_last - p1) * r.stride,
    })
}

/// A nearest upsampling's reach: its stride from the shapes.
fn resize_reach(r: Reach, x: Option<&Value>, out: Option<&Value>) -> Result<Reach, String> {
    let (Some(Value::F(x)), Some(Value::F(y))) = (x, out) else { return Err("no shapes".into()) };
    let (hin, hout) = (x.shape.get(2).copied().unwrap_or(0) as i64, y.shape.get(2).copied().unwrap_or(0) as i64);
    if hin == 0 || hout < hin || (r.stride * hin) % hout != 0 {
        return Err(format!("a resize from {hin} to {hout} rows is not an integer enlargement"));
    }
    Ok(Reach { stride: r.stride * hin / hout, lo: r.lo - r.stride, hi: r.hi })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn model(nodes: Vec<NodeProto>) -> Vec<u8> {
        let io = |n: &str| onnx::ValueInfoProto { name: n.into() };
        let graph = onnx::GraphProto { node: nodes, initializer: vec![], input: vec![io("x")], output: vec![io("y")] };
        let opset = vec![onnx::OperatorSetIdProto { domain: String::new(), version: 11 }];
        onnx::ModelProto { ir_version: 6, graph: Some(graph), opset_import: opset }.encode_to_vec()
    }

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: format!("{op}_0"),
            op_type: op.into(),
            attribute: vec![],
            domain: String::new(),
        }
    }

    #[test]
    fn unsupported_or_broken_graphs_are_refused_with_the_node_named() {
        let e = Graph::from_onnx(&model(vec![node("Gemm", &["x"], &["y"])])).unwrap_err();
        assert!(e.contains("Gemm_0") && e.contains("not supported"), "{e}");
        let e = Graph::from_onnx(&model(vec![node("Relu", &["z"], &["y"])])).unwrap_err();
        assert!(e.contains("reads \"z\""), "{e}");
        let e = Graph::from_onnx(&model(vec![node("Relu", &["x"], &["w"])])).unwrap_err();
        assert!(e.contains("\"y\" is never produced"), "{e}");
        assert!(Graph::from_onnx(b"\x08\x06\x12\x07pyt").is_err());
        // Every prefix of the real model fails cleanly or loads: no panic on cut files.
        for cut in [1usize, 100, 5000, 300_000, super::super::DETECTOR_ONNX.len() - 1] {
            let _ = Graph::from_onnx(&super::super::DETECTOR_ONNX[..cut]);
        }
    }

    #[test]
    fn relu_runs_and_frees_what_it_no_longer_needs() {
        let g = Graph::from_onnx(&model(vec![node("Relu", &["x"], &["y"])])).unwrap();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let r = g.run(Tensor::new(vec![1, 1, 1, 3], vec![-1.0, 0.5, 2.0]), &pool).unwrap();
        assert_eq!(r.outputs[0].data, [0.0, 0.5, 2.0]);
        assert_eq!(r.peak_bytes, 24);
    }
}
