//! Fusions after loading: an activation folded into the convolution before it, and chains of
//! affine layers (and a scalar affine after a function) folded into one node — the same
//! values, fewer passes over the blobs.

use super::elementwise::at;
use super::graph::{Act, Node, Op};

/// Folds each activation layer into the convolution before it, where it is that
/// convolution's only reader and the convolution has no activation of its own: the same
/// values, one pass fewer over the blob.
pub(crate) fn fuse_activations(nodes: Vec<Node>, consumers: &[usize]) -> Vec<Node> {
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

/// Folds a scalar or per-channel affine layer into the affine layer or function before it,
/// where that layer is its only input's only maker and reader: the same values (up to f32
/// rounding), one pass and one rounding fewer.
pub(crate) fn fuse_affines(nodes: Vec<Node>, consumers: &[usize]) -> Vec<Node> {
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
