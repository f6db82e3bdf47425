//! A validated network: the supported ncnn layers with their weights, in execution order, with
//! every blob's channel count and scale checked, and the two numbers the tiler needs — the
//! receptive radius (the halo of a tile, in input pixels) and the cost per input pixel.

use super::elementwise::Map;
use super::unet::Se;

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
pub(crate) const MAX_CONSTANT_INPUTS: usize = 16;

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
    /// The window less `[left, top, right, bottom]` pixels of the blob's edges.
    Crop([usize; 4]),
    /// Space to depth by `s` (the inverse of [`Op::PixelShuffle`]): what a strided
    /// convolution becomes ([`lower_strided`]).
    SpaceToDepth(usize),
    /// A squeeze-and-excitation block: the first input times the multipliers made from the
    /// whole image's channel means of the second ([`Se`]).
    Se(Se),
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
pub(crate) struct Shape {
    pub(crate) channels: usize,
    pub(crate) num: usize,
    pub(crate) den: usize,
    /// Receptive radius so far, in input pixels.
    pub(crate) radius: f64,
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

impl Graph {
    /// Adds the input, enlarged by nearest neighbour and cropped by `crop` output pixels on
    /// each side, to the network's output (Real-CUGAN's 4x models leave that sum to their
    /// program).
    pub(crate) fn add_input_residual(&mut self, crop: usize) {
        let s = self.scale;
        let (c, _, _) = self.sizes[self.input];
        let mut node = |name: &str, op: Op, inputs: Vec<usize>| {
            self.sizes.push((c, s, 1));
            self.radii.push(self.radii[self.output]);
            self.blobs += 1;
            self.nodes.push(Node { name: name.into(), op, inputs, outputs: vec![self.blobs - 1] });
            self.blobs - 1
        };
        let big = node("input enlarged", Op::Nearest(s, s), vec![self.input]);
        let cropped = node("input enlarged, cropped", Op::Crop([crop; 4]), vec![big]);
        let out = self.output;
        self.output = node("output plus input", Op::Sum(vec![1.0, 1.0]), vec![out, cropped]);
    }

    /// Per blob: the node that reads it, where exactly one node does (however many of its
    /// inputs it is).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))] // the device's fused sums use it
    pub(crate) fn sole_readers(&self) -> Vec<Option<usize>> {
        let mut readers: Vec<(usize, Option<usize>)> = vec![(0, None); self.blobs];
        for (n, node) in self.nodes.iter().enumerate() {
            for &b in &node.inputs {
                if readers[b].1 != Some(n) {
                    readers[b] = (readers[b].0 + 1, Some(n));
                }
            }
        }
        readers.into_iter().map(|(count, n)| n.filter(|_| count == 1)).collect()
    }

    /// How many exponents a calibration holds after its blobs' (`Exact::calibration_and_probes`):
    /// one per output channel of each convolution with an activation.
    pub(crate) fn activated_channels(&self) -> usize {
        self.nodes.iter().filter_map(|n| n.op.activated()).map(|c| c.cout).sum()
    }
}

impl Op {
    /// The convolution this is, if it is one with an activation.
    pub(crate) fn activated(&self) -> Option<&Conv> {
        match self {
            Op::Conv(c) if !matches!(c.act, Act::None) => Some(c),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob read by one node (as one input or as two) has it as its sole reader; a blob read
    /// by two nodes, or by none, has none.
    #[test]
    fn a_blob_read_by_one_node_has_it_as_its_sole_reader() {
        let node = |op: Op, inputs: Vec<usize>, outputs: Vec<usize>| Node { name: String::new(), op, inputs, outputs };
        let sum = || Op::Sum(vec![1.0, 1.0]);
        let nodes = vec![
            node(Op::Input, vec![], vec![0]),
            node(Op::Split, vec![0], vec![1, 2]),
            node(sum(), vec![1, 2], vec![3]),
            node(sum(), vec![3, 3], vec![4]),
            node(sum(), vec![0, 4], vec![5]),
        ];
        let g = Graph {
            nodes,
            blobs: 6,
            input: 0,
            output: 5,
            scale: 1,
            halo: 0,
            macs_per_pixel: 0,
            sizes: vec![(3, 1, 1); 6],
            radii: vec![0.0; 6],
        };
        assert_eq!(g.sole_readers(), [None, Some(2), Some(2), Some(3), Some(4), None]);
    }
}
