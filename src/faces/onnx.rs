//! Reading an ONNX model: the few protobuf messages of `onnx.proto` that a convolutional
//! detector needs (graph, nodes, attributes, tensors), declared with `prost`'s derive and the
//! field numbers of the ONNX specification. Fields not declared here are skipped by the
//! decoder; what is read is turned into [`super::graph::Graph`]'s own types and checked there.

use prost::Message;

/// `ModelProto`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ModelProto {
    /// `ir_version`.
    #[prost(int64, tag = "1")]
    pub(crate) ir_version: i64,
    /// `graph`.
    #[prost(message, optional, tag = "7")]
    pub(crate) graph: Option<GraphProto>,
    /// `opset_import`.
    #[prost(message, repeated, tag = "8")]
    pub(crate) opset_import: Vec<OperatorSetIdProto>,
}

/// `OperatorSetIdProto`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct OperatorSetIdProto {
    /// `domain` ("" or "ai.onnx" for the standard operators).
    #[prost(string, tag = "1")]
    pub(crate) domain: String,
    /// `version`.
    #[prost(int64, tag = "2")]
    pub(crate) version: i64,
}

/// `GraphProto`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct GraphProto {
    /// `node`, in topological order (the specification requires it).
    #[prost(message, repeated, tag = "1")]
    pub(crate) node: Vec<NodeProto>,
    /// `initializer`: the weights.
    #[prost(message, repeated, tag = "5")]
    pub(crate) initializer: Vec<TensorProto>,
    /// `input`.
    #[prost(message, repeated, tag = "11")]
    pub(crate) input: Vec<ValueInfoProto>,
    /// `output`.
    #[prost(message, repeated, tag = "12")]
    pub(crate) output: Vec<ValueInfoProto>,
}

/// `ValueInfoProto` (its name only).
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ValueInfoProto {
    /// `name`.
    #[prost(string, tag = "1")]
    pub(crate) name: String,
}

/// `NodeProto`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct NodeProto {
    /// `input`: value names ("" for an omitted optional input).
    #[prost(string, repeated, tag = "1")]
    pub(crate) input: Vec<String>,
    /// `output`.
    #[prost(string, repeated, tag = "2")]
    pub(crate) output: Vec<String>,
    /// `name`.
    #[prost(string, tag = "3")]
    pub(crate) name: String,
    /// `op_type`.
    #[prost(string, tag = "4")]
    pub(crate) op_type: String,
    /// `attribute`.
    #[prost(message, repeated, tag = "5")]
    pub(crate) attribute: Vec<AttributeProto>,
    /// `domain`.
    #[prost(string, tag = "7")]
    pub(crate) domain: String,
}

/// `AttributeProto` (the kinds a detector uses: float, int, string, tensor, lists).
#[derive(Clone, PartialEq, Message)]
pub(crate) struct AttributeProto {
    /// `name`.
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    /// `f`.
    #[prost(float, tag = "2")]
    pub(crate) f: f32,
    /// `i`.
    #[prost(int64, tag = "3")]
    pub(crate) i: i64,
    /// `s`.
    #[prost(bytes = "vec", tag = "4")]
    pub(crate) s: Vec<u8>,
    /// `t`.
    #[prost(message, optional, tag = "5")]
    pub(crate) t: Option<TensorProto>,
    /// `floats`.
    #[prost(float, repeated, tag = "7")]
    pub(crate) floats: Vec<f32>,
    /// `ints`.
    #[prost(int64, repeated, tag = "8")]
    pub(crate) ints: Vec<i64>,
}

/// `TensorProto` (dense data, inline: `raw_data` or the typed fields).
#[derive(Clone, PartialEq, Message)]
pub(crate) struct TensorProto {
    /// `dims`.
    #[prost(int64, repeated, tag = "1")]
    pub(crate) dims: Vec<i64>,
    /// `data_type` (1 float, 6 int32, 7 int64, ...).
    #[prost(int32, tag = "2")]
    pub(crate) data_type: i32,
    /// `float_data`.
    #[prost(float, repeated, tag = "4")]
    pub(crate) float_data: Vec<f32>,
    /// `int32_data`.
    #[prost(int32, repeated, tag = "5")]
    pub(crate) int32_data: Vec<i32>,
    /// `int64_data`.
    #[prost(int64, repeated, tag = "7")]
    pub(crate) int64_data: Vec<i64>,
    /// `name`.
    #[prost(string, tag = "8")]
    pub(crate) name: String,
    /// `raw_data`: little-endian values.
    #[prost(bytes = "vec", tag = "9")]
    pub(crate) raw_data: Vec<u8>,
    /// `data_location` (1 = external file: not supported).
    #[prost(int32, tag = "14")]
    pub(crate) data_location: i32,
}

/// ONNX's `TensorProto.DataType` codes used here.
pub(crate) const FLOAT: i32 = 1;
/// `INT32`.
pub(crate) const INT32: i32 = 6;
/// `INT64`.
pub(crate) const INT64: i32 = 7;

/// Decodes a model file's bytes.
pub(crate) fn decode(bytes: &[u8]) -> Result<ModelProto, String> {
    ModelProto::decode(bytes).map_err(|e| format!("not an ONNX model: {e}"))
}

/// A tensor's dimensions, checked non-negative.
pub(crate) fn dims_of(t: &TensorProto) -> Result<Vec<usize>, String> {
    t.dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("tensor {:?} has a negative dimension {d}", t.name)))
        .collect()
}

/// The number of elements `dims` describe, or an error when it overflows.
pub(crate) fn count(dims: &[usize], name: &str) -> Result<usize, String> {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| format!("tensor {name:?} is too large"))
}

/// A float tensor's values (from `raw_data` or `float_data`), checked against its dimensions.
pub(crate) fn floats_of(t: &TensorProto) -> Result<Vec<f32>, String> {
    let n = count(&dims_of(t)?, &t.name)?;
    let v: Vec<f32> = if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    };
    if v.len() != n || (!t.raw_data.is_empty() && t.raw_data.len() != 4 * n) {
        return Err(format!("tensor {:?} holds {} values for {n} elements", t.name, v.len()));
    }
    Ok(v)
}

/// An integer tensor's values (int64 or int32, from `raw_data` or the typed fields).
pub(crate) fn ints_of(t: &TensorProto) -> Result<Vec<i64>, String> {
    let n = count(&dims_of(t)?, &t.name)?;
    let v: Vec<i64> = match (t.data_type, t.raw_data.is_empty()) {
        (INT64, true) => t.int64_data.clone(),
        (INT32, true) => t.int32_data.iter().map(|&x| x as i64).collect(),
        (INT64, false) => {
            t.raw_data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect()
        }
        (INT32, false) => {
            t.raw_data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect()
        }
        (d, _) => return Err(format!("tensor {:?} has data type {d}, not an integer type", t.name)),
    };
    if v.len() != n {
        return Err(format!("tensor {:?} holds {} values for {n} elements", t.name, v.len()));
    }
    Ok(v)
}
