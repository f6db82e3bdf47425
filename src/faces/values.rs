//! The face detector engine's data: tensors (float, possibly dry), integer values, the
//! operators with their checked attributes. Everything else in `faces` builds on these.

/// A dense float tensor (row-major). Empty `data` with a non-empty shape: dry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tensor {
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Vec<f32>,
}

impl Tensor {
    /// A tensor from its shape and data.
    pub(crate) fn new(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        Tensor { shape, data }
    }
    /// A tensor of this shape without data (for dry runs).
    pub(crate) fn dry(shape: Vec<usize>) -> Tensor {
        Tensor { shape, data: Vec::new() }
    }
    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether the tensor has a shape but no data.
    pub(crate) fn is_dry(&self) -> bool {
        self.data.is_empty() && self.len() != 0
    }
    /// Bytes its data takes when computed.
    pub(crate) fn bytes(&self) -> u64 {
        4 * self.len() as u64
    }
    /// A tensor of `shape` filled by `f`, or dry when `dry`.
    pub(crate) fn filled(shape: Vec<usize>, dry: bool, f: impl FnOnce(&mut [f32])) -> Tensor {
        if dry {
            return Tensor::dry(shape);
        }
        let mut data = vec![0.0; shape.iter().product()];
        f(&mut data);
        Tensor { shape, data }
    }
}

/// A 2-D convolution's geometry (the kernel size comes from the weights).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    pub(crate) stride: [usize; 2],
    pub(crate) dilation: [usize; 2],
    /// Top, left, bottom, right.
    pub(crate) pads: [usize; 4],
    pub(crate) group: usize,
}

/// A value flowing through the graph: float activations, or integer shape data.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// Float activations (no data in a dry run).
    F(Tensor),
    /// Integers (shapes, indices) with their dimensions.
    I(Vec<usize>, Vec<i64>),
}

/// One operator with its checked attributes.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// `Conv`.
    Conv(ConvShape),
    /// `Relu`.
    Relu,
    /// `LeakyRelu` with its slope.
    LeakyRelu(f32),
    /// `Add` of two tensors of one shape.
    Add,
    /// `Concat` along an axis.
    Concat(i64),
    /// `Shape`.
    Shape,
    /// `Gather` along an axis (integer data).
    Gather(i64),
    /// `Unsqueeze` with the axes of opset < 13 (attribute) or none (second input).
    Unsqueeze(Vec<i64>),
    /// `Slice` (integer data, opset ≥ 10 inputs).
    Slice,
    /// `Cast` to an integer type.
    CastInt,
    /// `Resize`, nearest neighbour, asymmetric coordinates, rounding down.
    ResizeNearest,
    /// `Transpose` with its permutation.
    Transpose(Vec<usize>),
    /// `Reshape`.
    Reshape,
    /// `Softmax` over the axes from the given one on (opset < 13) or that one axis.
    Softmax { axis: i64, flatten: bool },
    /// `Identity`.
    Identity,
}

/// Normalises a possibly negative axis for a tensor of `rank` dimensions.
pub(crate) fn axis_of(axis: i64, rank: usize) -> Result<usize, String> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    usize::try_from(a).ok().filter(|&a| a < rank).ok_or_else(|| format!("axis {axis} is out of range for rank {rank}"))
}
