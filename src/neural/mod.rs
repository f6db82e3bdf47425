//! Learned super-resolution: ncnn models, loaded and validated.
//!
//! This is the loader half of the neural engine: [`Model`] reads an ncnn `.param`/`.bin` pair
//! (the two shipped models are embedded in the binary), checks every layer, parameter and
//! weight count, and builds a graph of the supported operations with the numbers the tiler
//! needs: the scale, the receptive radius (halo) and the cost per pixel. Running the graph on
//! tiles is the next step of the engine (see docs/neural.md).

mod cache;
mod calibrate;
pub(crate) mod elementwise;
pub(crate) mod exact;
mod fidelity;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub use fidelity::cancelling_network;
mod device_pass;
mod fusion;
pub(crate) mod graph;
pub(crate) mod inputs;
mod kernels;
mod loader;
mod param;
mod pass_plan;
pub(crate) mod phases;
pub(crate) mod reference;
pub(crate) mod resize;
pub(crate) mod se_pass;
pub(crate) mod stage;
pub(crate) mod tail;
mod tensor;
pub(crate) mod unet;
mod weights;
pub(crate) mod wide;
pub mod zoo;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A built-in model: its name, files and what it is for.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Builtin {
    /// The name `--model` takes.
    pub name: &'static str,
    /// One line on what it is good and bad at.
    pub about: &'static str,
    /// Its licences.
    pub licence: &'static str,
    /// How its reference program pads the whole image.
    pub border: Border,
    param: &'static str,
    bin: &'static [u8],
    /// Its calibration (`Exact::calibration_and_probes`), computed once and kept in
    /// `models/*.calibration` (checked by a test), so that a job does not pay for the float run.
    calibration: &'static str,
}

/// The models that ship with gigascale (provenance and licences: `models/README.md`).
pub const BUILTINS: [Builtin; 2] = [
    Builtin {
        name: "photo",
        about: "waifu2x upconv_7 photo: faithful (+1.7 dB over bicubic at x2 on photos), soft at large factors",
        licence: "MIT (waifu2x, ncnn conversion), BSD-3-Clause (wheel)",
        border: Border::Replicate(7),
        param: include_str!("../../models/upconv7-photo-x2.param"),
        bin: include_bytes!("../../models/upconv7-photo-x2.bin"),
        calibration: include_str!("../../models/upconv7-photo-x2.calibration"),
    },
    Builtin {
        name: "anime",
        about: "realesr-animevideov3: sharp, for art, line work and anime; paints on photos",
        licence: "BSD-3-Clause (Real-ESRGAN, wheel), MIT (ncnn conversion)",
        border: Border::Reflect101(10),
        param: include_str!("../../models/realesr-animevideov3-x4.param"),
        bin: include_bytes!("../../models/realesr-animevideov3-x4.bin"),
        calibration: include_str!("../../models/realesr-animevideov3-x4.calibration"),
    },
];

/// How the image is extended beyond its borders before the network sees it, as the reference
/// programs do (the convolutions then zero-pad at that extended border).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Border {
    /// Repeat the edge pixel, this many pixels out (waifu2x-ncnn-vulkan: 7).
    Replicate(u32),
    /// Mirror without repeating the edge (`dcb|abcd|cba`), this many pixels out
    /// (Real-ESRGAN-ncnn-vulkan: 10).
    Reflect101(u32),
    /// Mirror as [`Border::Reflect101`], `pad` pixels out, and on the right and bottom as
    /// many more as make the image's size a multiple of `align` (realcugan-ncnn-vulkan: 18
    /// and 2 at 2x, 14 and 4 at 3x, 19 and 2 at 4x).
    Reflect101Aligned {
        /// Pixels of border on every side.
        pad: u32,
        /// The multiple the image's size is rounded up to, on the right and bottom.
        align: u32,
    },
}

impl Border {
    /// Pixels of border before the image (left, top).
    fn width(self) -> usize {
        match self {
            Border::Replicate(n) | Border::Reflect101(n) | Border::Reflect101Aligned { pad: n, .. } => n as usize,
        }
    }
    /// The padded length of an image axis of `n` pixels.
    fn padded(self, n: usize) -> usize {
        let align = match self {
            Border::Reflect101Aligned { align, .. } => (align as usize).max(1),
            _ => 1,
        };
        n.next_multiple_of(align) + 2 * self.width()
    }
    /// The source index that padded index `i` (may be negative or past `n`) reads.
    fn index(self, i: isize, n: usize) -> usize {
        let n = n as isize;
        let j = match self {
            Border::Replicate(_) => i.clamp(0, n - 1),
            Border::Reflect101(_) | Border::Reflect101Aligned { .. } if n == 1 => 0,
            Border::Reflect101(_) | Border::Reflect101Aligned { .. } => {
                let period = 2 * (n - 1);
                let m = i.rem_euclid(period);
                if m < n {
                    m
                } else {
                    period - m
                }
            }
        };
        j as usize
    }
}

/// Whether `name` is a built-in model's.
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.iter().any(|b| b.name == name)
}

/// A loaded, validated network.
///
/// ```
/// let m = gigascale::Model::builtin("anime")?;
/// assert_eq!((m.scale(), m.halo()), (4, 18));
/// # Ok::<(), gigascale::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Model {
    name: String,
    pub(crate) graph: graph::Graph,
    border: Border,
    /// A built-in model's kept calibration.
    calibration: Option<&'static str>,
    /// A digest of the model's two files (FNV-1a), for `--resume`'s fingerprint.
    digest: u64,
    /// The integer form, made on first use (a float run on the calibration image).
    exact: std::sync::OnceLock<std::result::Result<std::sync::Arc<exact::Exact>, String>>,
    /// [`Model::fidelity`], once measured.
    fidelity: std::sync::OnceLock<u32>,
    /// The float network's outputs on the fidelity screen's test images, once computed (by
    /// the calibration, or the fidelity measure); the same at either activation width.
    probes: std::sync::OnceLock<std::sync::Arc<Vec<reference::Tensor>>>,
    /// Whether the exact engine's activations are 24-bit (`wide.rs`) rather than 16-bit.
    wide: bool,
    /// Where [`Model::with_fitting_activation_bits`] chose 24 bits: the 16-bit fidelity that
    /// made it.
    narrow_fidelity: Option<u32>,
}

impl Model {
    /// A built-in model by name (`photo`, `anime`).
    pub fn builtin(name: &str) -> Result<Model> {
        let b = BUILTINS.iter().find(|b| b.name == name).ok_or_else(|| {
            let names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
            Error::usage(format!("no built-in model {name:?} (built in: {}; or give a .param file)", names.join(", ")))
        })?;
        let mut m = Model::from_parts(b.name, b.param, b.bin)
            .map_err(|e| Error::Internal(format!("built-in model {name}: {e}")))?;
        m.border = b.border;
        m.calibration = Some(b.calibration);
        Ok(m)
    }

    /// A built-in model's name, a path to a `.param` file with its `.bin` beside it, or a
    /// model's name below the search directories (`extra_dirs` first; see [`zoo`]).
    pub fn open(spec: &str, extra_dirs: &[PathBuf]) -> Result<Model> {
        zoo::resolve(spec, &zoo::model_dirs(extra_dirs))
    }

    /// Loads `path` (`.param`) and the `.bin` beside it. Errors name the file and the line.
    pub fn load(path: &Path) -> Result<Model> {
        if path.extension().and_then(|e| e.to_str()) != Some("param") {
            return Err(Error::usage(format!("{}: a model is a built-in name or an ncnn .param file", path.display())));
        }
        let bin_path: PathBuf = path.with_extension("bin");
        let param = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        if param.len() > 1 << 20 {
            return Err(Error::format(path, "a .param file of over 1 MiB is not a model description"));
        }
        let param = String::from_utf8(param).map_err(|_| Error::format(path, "the .param file is not text"))?;
        let bin = std::fs::read(&bin_path).map_err(|e| Error::io(&bin_path, e))?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Model::from_parts(&name, &param, &bin).map_err(|e| Error::format(path, e))
    }

    /// Parses and validates a model from the texts of its two files.
    pub fn from_parts(name: &str, param: &str, bin: &[u8]) -> std::result::Result<Model, String> {
        let layers = param::parse(param)?;
        let mut graph = loader::build(&layers, bin)?;
        let maps = graph.constant_maps()?;
        if maps.is_some() {
            graph.fold_constant_inputs(inputs::DEFAULT_NOISE);
        }
        // Custom models: an all-valid network (no convolution pads) is extended by replicating
        // its receptive radius, as waifu2x-ncnn-vulkan does (exact); a padded one, as
        // Real-ESRGAN-ncnn-vulkan runs every model, by reflect-101 of 10 px, its convolutions
        // zero-padding at that border.
        // Models with constant input maps (SRMD) extend by their radius, as srmd-ncnn-vulkan does.
        // Real-CUGAN (valid convolutions, strided ones and crops): as realcugan-ncnn-vulkan
        // pads it, its 4x models with the enlarged input added to their output.
        let unet = graph.nodes.iter().any(|n| matches!(n.op, graph::Op::Crop(_) | graph::Op::SpaceToDepth(_)));
        let border = match (graph.pads(), unet, graph.scale) {
            (false, true, 2) => Border::Reflect101Aligned { pad: 18, align: 2 },
            (false, true, 3) => Border::Reflect101Aligned { pad: 14, align: 4 },
            (false, true, 4) => Border::Reflect101Aligned { pad: 19, align: 2 },
            (false, true, _) => Border::Reflect101Aligned { pad: graph.halo as u32, align: 4 },
            (true, _, _) if maps.is_none() => Border::Reflect101(10),
            _ => Border::Replicate(graph.halo as u32),
        };
        if border == (Border::Reflect101Aligned { pad: 19, align: 2 }) {
            graph.add_input_residual(4 * 19);
        }
        Ok(Model {
            name: name.to_string(),
            graph,
            border,
            calibration: None,
            digest: crate::digest::Fnv::default().bytes(param.as_bytes()).bytes(bin).0,
            exact: std::sync::OnceLock::new(),
            fidelity: std::sync::OnceLock::new(),
            probes: std::sync::OnceLock::new(),
            wide: false,
            narrow_fidelity: None,
        })
    }

    /// The model with SRMD's noise level `noise` (0-10) folded in, for a model that takes one
    /// (`srmd_x*`); `None` keeps the default (3). A model without a noise input refuses a level.
    pub fn with_noise(mut self, noise: Option<u32>) -> Result<Model> {
        let Some(n) = noise else { return Ok(self) };
        let maps = self.graph.constant_maps().map_err(|e| Error::usage(format!("model {}: {e}", self.name)))?;
        if maps != Some(inputs::ConstantMaps::DegradationAndNoise) {
            return Err(Error::usage(format!(
                "--noise {n}: model {} has no noise input (SRMD's srmd_x2/3/4 have; srmdnf_x* are its noise-free form)",
                self.name
            )));
        }
        if n > inputs::MAX_NOISE {
            return Err(Error::usage(format!("--noise {n}: give 0 to {}", inputs::MAX_NOISE)));
        }
        self.graph.fold_constant_inputs(n);
        self.digest = crate::digest::Fnv(self.digest).bytes(b"noise").bytes(&n.to_le_bytes()).0;
        (self.exact, self.fidelity, self.probes) = Default::default();
        Ok(self)
    }

    /// Whether the model takes a noise level ([`with_noise`](Self::with_noise): SRMD's
    /// `srmd_x*`).
    pub fn takes_noise(&self) -> bool {
        matches!(self.graph.constant_maps(), Ok(Some(inputs::ConstantMaps::DegradationAndNoise)))
    }

    /// A digest of the model's `.param` and `.bin` (FNV-1a) and of its activations' width:
    /// two models with the same digest compute the same bytes.
    pub fn digest(&self) -> u64 {
        match self.wide {
            true => crate::digest::Fnv(self.digest).bytes(b"activations 24").0,
            false => self.digest,
        }
    }

    /// The model with the exact engine's activations `bits` wide: 16 (the default; every
    /// backend) or 24 (eight more bits below each blob's scale, for deep networks whose
    /// images sit far below their calibration's range — realesrgan-x4plus on dark photos;
    /// twice the convolutions' work and the tensors' memory; the CPU and the GPU give the same
    /// bytes).
    pub fn with_activation_bits(mut self, bits: u32) -> Result<Model> {
        self.wide = match bits {
            16 => false,
            24 => true,
            _ => return Err(Error::usage(format!("--activation-bits {bits}: give 16 or 24"))),
        };
        (self.exact, self.fidelity) = (std::sync::OnceLock::new(), std::sync::OnceLock::new());
        self.narrow_fidelity = None;
        Ok(self)
    }

    /// The exact engine's activation width in bits (16 or 24).
    pub fn activation_bits(&self) -> u32 {
        if self.wide {
            24
        } else {
            16
        }
    }

    /// The network.
    pub(crate) fn graph(&self) -> &graph::Graph {
        &self.graph
    }

    /// The model's name (built-in name or file stem).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Output pixels per input pixel, per axis.
    pub fn scale(&self) -> u32 {
        self.graph.scale as u32
    }
    /// Input pixels of context an output pixel depends on, on every side: the receptive
    /// radius of the graph, and the halo of a tile.
    pub fn halo(&self) -> u32 {
        self.graph.halo as u32
    }
    /// Multiply-adds per input pixel.
    pub fn macs_per_pixel(&self) -> u64 {
        self.graph.macs_per_pixel
    }
    /// Layers in execution order.
    pub fn layers(&self) -> usize {
        self.graph.nodes.len()
    }
    /// How the whole image is extended before the network.
    pub fn border(&self) -> Border {
        self.border
    }

    /// The integer form of the network (calibrated on first use, then shared).
    pub(crate) fn exact(&self) -> Result<std::sync::Arc<exact::Exact>> {
        let made = self.exact.get_or_init(|| {
            let made = match self.calibration {
                Some(text) => cache::parse(text)
                    .ok_or_else(|| "a malformed built-in calibration".to_string())
                    .and_then(|c| exact::Exact::with_calibration(&self.graph, &c, self.wide)),
                None => {
                    self.file_calibration().and_then(|c| exact::Exact::with_calibration(&self.graph, &c, self.wide))
                }
            };
            made.map(std::sync::Arc::new)
        });
        made.clone().map_err(|e| Error::usage(format!("model {}: {e}", self.name)))
    }

    /// A model file's calibration: kept from an earlier run ([`cache`]), else computed (and
    /// kept).
    fn file_calibration(&self) -> std::result::Result<Vec<i32>, String> {
        if let Some(c) = cache::load(self.digest, self.graph.blobs + self.graph.activated_channels()) {
            return Ok(c);
        }
        let (c, probes) = exact::Exact::calibration_and_probes(&self.graph)?;
        let _ = self.probes.set(std::sync::Arc::new(probes));
        cache::store(self.digest, &c);
        Ok(c)
    }

    /// This model computed with the scalar micro-kernel (`kernels/native.rs`), for tests that
    /// compare it with the fast ones.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn with_native_kernel(self) -> Result<Model> {
        let e = exact::Exact::calibrate(&self.graph, self.wide).map_err(Error::Internal)?;
        let m = Model { exact: std::sync::OnceLock::new(), ..self };
        let _ = m.exact.set(Ok(std::sync::Arc::new(e.with_kernel(kernels::Kernel::Native))));
        Ok(m)
    }

    /// The network on a whole 8-bit RGB image (`w x h`, interleaved), extended by
    /// [`Model::border`] as the reference program does, the result cropped back to
    /// `scale·w x scale·h` and rounded as ncnn's programs do (`v·255 + 0.5`, truncated). With
    /// `exact`, in the integer engine, else in the float reference. With `tile`, computed tile
    /// by tile (`tile x tile` output pixels, each from its window of the input plus the halo).
    /// Holds the image whole: for tests and goldens, not for gigapixels.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn reference_image(&self, w: usize, h: usize, rgb: &[u8], tile: Option<usize>, exact: bool) -> Result<Vec<u8>> {
        if rgb.len() != w * h * 3 || w == 0 || h == 0 {
            return Err(Error::usage(format!("{} bytes are not a {w}x{h} RGB image", rgb.len())));
        }
        let ex = if exact { Some(self.exact()?) } else { None };
        let s = self.graph.scale;
        let (ow, oh) = (w * s, h * s);
        let t = tile.unwrap_or(ow.max(oh)).max(1);
        let mut px = vec![0u8; ow * oh * 3];
        let rects: Vec<_> = stage::tile_rects((ow, oh), t).collect();
        let at = |x: usize, y: usize, c: usize| rgb[(y * w + x) * 3 + c];
        let fixed = |rect| {
            Ok(self
                .padded(w, h, self.input_window(w, h, rect), |x, y, c| stage::to_fixed(at(x, y, c) as u32, 255) as i16))
        };
        let float = |rect| Ok(self.padded(w, h, self.input_window(w, h, rect), |x, y, c| at(x, y, c) as f32 / 255.0));
        let geo = self.se_geometry(w, h);
        let g = &self.graph;
        let mut put = |x: usize, y: usize, v: [u8; 3]| px[(y * ow + x) * 3..][..3].copy_from_slice(&v);
        match &ex {
            Some(e) => {
                let run = |rect, scales: &reference::SeScales, stop| {
                    e.run_prefix(g, fixed(rect)?, scales, stop).map_err(Error::Internal)
                };
                let sums = |t: &reference::Tensor<i32>, win, b| e.prefix_sums(t, win, b);
                let scales = se_pass::scales(g, &sums, geo, &rects, &run, &mut || Ok(()))?;
                let exponent = e.exponent(g.output);
                for &rect in &rects {
                    let o = e.run_until(g, fixed(rect)?, &scales, g.output).map_err(Error::Internal)?;
                    self.place(w, h, &o, rect, |x, y, v| {
                        put(x, y, v.map(|q| stage::from_fixed(q as i32, exponent, 255) as u8))
                    })?;
                }
            }
            None => {
                let run = |rect, scales: &reference::SeScales, stop| {
                    reference::run_until(g, &reference::Float, float(rect)?, scales, stop, &mut |_, _| {})
                        .map_err(Error::Internal)
                };
                let sums =
                    |t: &reference::Tensor, win, b| reference::Engine::channel_sums(&reference::Float, t, win, b);
                let scales = se_pass::scales(g, &sums, geo, &rects, &run, &mut || Ok(()))?;
                for &rect in &rects {
                    let o = reference::run_until(g, &reference::Float, float(rect)?, &scales, g.output, &mut |_, _| {})
                        .map_err(Error::Internal)?;
                    self.place(w, h, &o, rect, |x, y, v| {
                        put(x, y, v.map(|v| (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8))
                    })?;
                }
            }
        }
        Ok(px)
    }

    /// How the padded input of a `w x h` image lies against the output, for the SE blocks'
    /// sums ([`se_pass::scales`]).
    pub(crate) fn se_geometry(&self, w: usize, h: usize) -> se_pass::Geometry {
        let s = self.graph.scale;
        se_pass::Geometry {
            padded: (self.border.padded(w), self.border.padded(h)),
            pad: self.border.width(),
            out: (w * s, h * s),
            scale: s,
        }
    }

    /// The window of the padded input that output pixels `(x, y, w, h)` need: their source
    /// span plus the halo, within the padded image. Per axis (start, end).
    fn input_window(&self, w: usize, h: usize, (x, y, tw, th): (usize, usize, usize, usize)) -> [(usize, usize); 2] {
        // With SE blocks, a tile at the image's edge reads the whole border (they average
        // over it).
        let (p, s, halo, se) = (self.border.width(), self.graph.scale, self.graph.halo + 1, self.graph.has_se());
        let span = |a: usize, n: usize, image: usize| {
            let len = self.border.padded(image);
            let start = if a == 0 && se { 0 } else { (a / s + p).saturating_sub(halo) };
            let end = if a + n >= image * s && se { len } else { ((a + n).div_ceil(s) + p + halo).min(len) };
            (start, end)
        };
        [span(x, tw, w), span(y, th, h)]
    }

    /// The padded input's `window` (3 channels), sample `(x, y, c)` of the image read by `at`
    /// (rows in parallel, on the current rayon pool).
    fn padded<T: Copy + Default + Send>(
        &self,
        w: usize,
        h: usize,
        [(x0, x1), (y0, y1)]: [(usize, usize); 2],
        at: impl Fn(usize, usize, usize) -> T + Sync,
    ) -> reference::Tensor<T> {
        use rayon::prelude::*;
        let p = self.border.width();
        let (gw, gh) = (self.border.padded(w), self.border.padded(h));
        let mut t = reference::Tensor::window(3, (x0, x1 - x0, gw), (y0, y1 - y0, gh));
        let cols: Vec<usize> = (0..t.w).map(|xx| self.border.index((x0 + xx) as isize - p as isize, w)).collect();
        let th = t.h;
        t.data.par_chunks_mut(cols.len().max(1)).enumerate().for_each(|(r, row)| {
            let (c, yy) = (r / th, r % th);
            let sy = self.border.index((y0 + yy) as isize - p as isize, h);
            row.iter_mut().zip(&cols).for_each(|(v, &sx)| *v = at(sx, sy, c));
        });
        t
    }

    /// Where output pixel `(x, y)` of the cropped output lies in the network's output window
    /// `out`, checking that the window covers the pixels `(x, y, w, h)`: `(column, row)` within
    /// `out`'s data.
    fn origin<T>(
        &self,
        w: usize,
        h: usize,
        out: &reference::Tensor<T>,
        (x, y, tw, th): (usize, usize, usize, usize),
    ) -> Result<(usize, usize)> {
        // The output is centred on the padded input (networks shrink both sides alike).
        let s = self.graph.scale;
        let p = self.border.width() * s;
        let offset =
            |padded: usize, g: usize| (padded * s).checked_sub(g).map(|d| d / 2).and_then(|d| p.checked_sub(d));
        let (Some(ox), Some(oy)) = (offset(self.border.padded(w), out.gw), offset(self.border.padded(h), out.gh))
        else {
            return Err(Error::Internal(format!("{}: the output does not cover the image", self.name)));
        };
        let (gx, gy) = (x + ox, y + oy);
        if gx < out.x0 || gy < out.y0 || gx + tw > out.x0 + out.w || gy + th > out.y0 + out.h {
            return Err(Error::Internal(format!("the halo of {} did not cover tile {x},{y}", self.name)));
        }
        Ok((gx - out.x0, gy - out.y0))
    }

    /// Hands output pixels `(x, y, w, h)` of the cropped output, from the network's output
    /// window `out`, to `put(x, y, [r, g, b])`.
    #[cfg(feature = "testing")]
    fn place<T: Copy>(
        &self,
        w: usize,
        h: usize,
        out: &reference::Tensor<T>,
        (x, y, tw, th): (usize, usize, usize, usize),
        mut put: impl FnMut(usize, usize, [T; 3]),
    ) -> Result<()> {
        let (ox, oy) = self.origin(w, h, out, (x, y, tw, th))?;
        let plane = out.h * out.w;
        for yy in 0..th {
            for xx in 0..tw {
                let i = (oy + yy) * out.w + ox + xx;
                put(x + xx, y + yy, [out.data[i], out.data[plane + i], out.data[2 * plane + i]]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_models_load_with_their_known_shape() {
        let photo = Model::builtin("photo").unwrap();
        assert_eq!((photo.scale(), photo.halo(), photo.layers()), (2, 7, 8));
        assert_eq!(photo.macs_per_pixel(), 551_856);
        let anime = Model::builtin("anime").unwrap();
        // 40 layers in the file; each PReLU is folded into its convolution.
        assert_eq!((anime.scale(), anime.halo(), anime.layers()), (4, 18, 23));
        assert_eq!(anime.macs_per_pixel(), 619_200);
    }

    #[test]
    fn kept_calibrations_are_what_calibrating_gives() {
        for b in BUILTINS {
            let m = Model::builtin(b.name).unwrap();
            let made = exact::Exact::calibration(&m.graph).unwrap();
            let text: Vec<String> = made.iter().map(i32::to_string).collect();
            let hint = format!("{}: its models/*.calibration should read\n{}", b.name, text.join(" "));
            assert_eq!(cache::parse(b.calibration), Some(made), "{hint}");
        }
    }

    #[test]
    fn a_lossy_model_file_gets_24_bits_and_a_refusal_names_16() {
        let (param, bin) = cancelling_network();
        let m = Model::from_parts("cancel", param, &bin).unwrap().with_fitting_activation_bits().unwrap();
        assert_eq!(m.activation_bits(), 24);
        assert!(m.narrow_fidelity().unwrap() > 2);
        let need = |m: &Model| if m.activation_bits() == 16 { 100 << 20 } else { 300 << 20 };
        assert_eq!(m.narrower(need), ", or --activation-bits 16 (100.0 MiB; further from the float network)");
        // Asked for 24 bits, or a built-in: no such hint.
        assert_eq!(m.clone().with_activation_bits(24).unwrap().narrower(need), "");
        // Within ncnn's own 1 level: 16 bits; 2 levels (models-se/up3x-no-denoise, 3-5 LSB
        // from ncnn on photo crops at 16 bits) and more: 24.
        assert_eq!([0, 1, 2, 17].map(Model::fitting_activation_bits), [16, 16, 24, 24]);
        let anime = Model::builtin("anime").unwrap().with_fitting_activation_bits().unwrap();
        assert_eq!((anime.activation_bits(), anime.narrower(need).as_str()), (16, ""));
    }

    #[test]
    fn borders_index_like_the_reference_programs() {
        let r = Border::Reflect101(3);
        assert_eq!((-3..8).map(|i| r.index(i, 5)).collect::<Vec<_>>(), vec![3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
        let e = Border::Replicate(2);
        assert_eq!((-2..7).map(|i| e.index(i, 5)).collect::<Vec<_>>(), vec![0, 0, 0, 1, 2, 3, 4, 4, 4]);
    }

    #[test]
    fn unknown_names_list_the_built_ins() {
        let e = Model::builtin("esrgan").unwrap_err().to_string();
        assert!(e.contains("photo, anime"), "{e}");
    }
}
