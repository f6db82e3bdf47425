//! [`Request`]: what a front end asks for, as it holds it (names, size notation, optional
//! values), and the one conversion to validated [`Options`] — ripgrep's "low args → high args".
//! The command line, a unit plan's record and the server's job requests all go through
//! [`Request::options`]; nothing else turns user input into options.

use super::{Backend, Options, Size};
use crate::error::{Error, Result};
use crate::kernel::{Filter, Intermediate};
use crate::limits::parse_size;
use crate::sink::Compression;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// The names `precision` takes: the two intermediates, and the GPU's half floats.
pub const PRECISIONS: [&str; 3] = ["exact", "rounded", "f16"];

/// A job as a front end asks for it, before validation. Every field is optional (`None`: the
/// default); names are the command line's (`--filter lanczos3`, `--max-memory 64M`). It is
/// also a builder for library users:
///
/// ```
/// use gigascale::{Filter, Request};
/// let o = Request::default().scale(15.0).filter("lanczos3").max_memory("64M").threads(2).options()?;
/// assert_eq!((o.filter, o.limits.max_memory, o.threads), (Filter::Lanczos3, 64 << 20, 2));
/// let e = Request::default().scale(2.0).filter("sharp").options().unwrap_err();
/// assert!(e.to_string().contains("nearest, bilinear, bicubic, mitchell, lanczos3"), "{e}");
/// # Ok::<(), gigascale::Error>(())
/// ```
///
/// It serialises (serde) to the record a distributed plan keeps, and deserialises from a
/// server's job request; unknown fields are refused.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Request {
    /// Scale factor of both axes (`--scale`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Horizontal factor (`--scale-x`), overriding `scale` on that axis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_x: Option<f64>,
    /// Vertical factor (`--scale-y`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_y: Option<f64>,
    /// Output width (`--width`); alone, the height follows the aspect ratio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Output height (`--height`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Filter name ([`Filter::name`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// `exact`, `rounded` or `f16` ([`PRECISIONS`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// A model: a built-in name or an ncnn `.param` path ([`crate::Model::open`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Passes of the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_passes: Option<u32>,
    /// The noise level of an SRMD model ([`crate::Model::with_noise`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise: Option<u32>,
    /// The exact engine's activation width, 16 or 24 bits
    /// ([`crate::Model::with_activation_bits`]); none: the width the model's fidelity asks for
    /// ([`crate::Model::with_fitting_activation_bits`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_bits: Option<u32>,
    /// Directories searched for models before `$GIGASCALE_MODELS` and the user's data
    /// directory ([`crate::neural::zoo`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub model_dirs: Vec<PathBuf>,
    /// Face restoration: the restorer's ONNX file ([`crate::faces::RestoreOptions`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faces: Option<PathBuf>,
    /// CodeFormer's fidelity weight, 0-1 (default 0.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_fidelity: Option<f32>,
    /// ONNX Runtime's threads within one face (shapes the bytes; default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_threads: Option<usize>,
    /// Where the face restorer runs: `cpu` (default), `cuda` or `cuda:N` (shapes the bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_device: Option<String>,
    /// ONNX Runtime's library for `faces`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onnxruntime: Option<PathBuf>,
    /// Output tile edge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tile: Option<u32>,
    /// Compression name ([`Compression::name`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Compression level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<i32>,
    /// The output's resolution, pixels per inch (default: the input's, scaled with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpi: Option<f64>,
    /// The printed width (`2m`, `150cm`, `600mm`, `40in`): with `dpi`, the output's width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub print_width: Option<String>,
    /// The printed height, as `print_width`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub print_height: Option<String>,
    /// JPEG quality, 1-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    /// JPEG chroma subsampling name ([`crate::sink::Subsampling::name`]: `444`, `420`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subsampling: Option<String>,
    /// Reduced-resolution levels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pyramid: Option<bool>,
    /// OME-Zarr shard edge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    /// Memory budget in size notation (`64M`; [`parse_size`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<String>,
    /// GPU memory cap in size notation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_memory: Option<String>,
    /// Input pixels accepted (0: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pixels: Option<u64>,
    /// Worker threads (at least 1; `None`: one per CPU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Backend name ([`Backend::name`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Where the scanline store goes (an existing directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temp_dir: Option<PathBuf>,
    /// Set to stop the job early (never serialised).
    #[serde(skip)]
    pub cancel: Option<Arc<AtomicBool>>,
}

/// Chained setters for library users: `Request::default().scale(2.0).filter("bicubic")`.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $t:ty => $conv:expr;)*) => {
        impl Request {
            $($(#[$doc])* pub fn $name(mut self, v: $t) -> Request {
                self.$name = Some($conv(v));
                self
            })*
        }
    };
}

setters! {
    /// Scale both axes by `v`.
    scale: f64 => std::convert::identity;
    /// Output width.
    width: u32 => std::convert::identity;
    /// Output height.
    height: u32 => std::convert::identity;
    /// Filter by name.
    filter: &str => str::to_string;
    /// Precision by name.
    precision: &str => str::to_string;
    /// A model by name or `.param` path.
    model: &str => str::to_string;
    /// Output tile edge.
    tile: u32 => std::convert::identity;
    /// Compression by name.
    compression: &str => str::to_string;
    /// Reduced-resolution levels.
    pyramid: bool => std::convert::identity;
    /// Memory budget in size notation.
    max_memory: &str => str::to_string;
    /// Worker threads.
    threads: usize => std::convert::identity;
    /// Backend by name.
    backend: &str => str::to_string;
}

/// `name` looked up by `find`, or a usage error listing `names`.
/// A length (`2m`, `150cm`, `600mm`, `40in`, or a number of inches) in inches.
fn parse_length(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic() || c == '"').unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let v: f64 = number.trim().parse().ok()?;
    let per_inch = match unit.trim() {
        "" | "in" | "\"" => 1.0,
        "mm" => 25.4,
        "cm" => 2.54,
        "m" => 0.0254,
        _ => return None,
    };
    (v.is_finite() && v > 0.0).then(|| v / per_inch)
}

fn named<T>(flag: &str, name: &str, names: &[&str], find: impl Fn(&str) -> Option<T>) -> Result<T> {
    find(name).ok_or_else(|| Error::usage(format!("{flag} {name:?}: expected one of {}", names.join(", "))))
}

impl Request {
    /// The one conversion: validated [`Options`], or a usage error naming the flag. Files are
    /// touched only to open a model given by path and to check that `temp_dir` is a
    /// directory.
    pub fn options(&self) -> Result<Options> {
        self.options_reporting(&mut |_| {})
    }

    /// [`Request::options`], telling `progress` of the long step it may take first: measuring
    /// a model file on its first use ([`crate::Event::Measuring`]).
    pub fn options_reporting(&self, progress: &mut dyn FnMut(&crate::Event)) -> Result<Options> {
        let mut o = Options::new(self.size()?);
        if let Some(f) = &self.filter {
            o.filter = named("--filter", f, &Filter::ALL.map(Filter::name), Filter::from_name)?;
        }
        match self.precision.as_deref() {
            None | Some("exact") => {}
            Some("rounded") => o.intermediate = Intermediate::Rounded,
            Some("f16") => o.gpu_f16 = true,
            Some(p) => named("--precision", p, &PRECISIONS, |_| None::<()>)?,
        }
        if let Some(c) = &self.compression {
            o.compression =
                named("--compression", c, &Compression::ALL.map(Compression::name), Compression::from_name)?;
        }
        if let Some(b) = &self.backend {
            o.backend = named("--backend", b, &Backend::ALL.map(Backend::name), Backend::from_name)?;
        }
        if let Some(m) = &self.max_memory {
            o.limits.max_memory = parse_size(m)?;
        }
        o.limits.gpu_memory = self.gpu_memory.as_deref().map(parse_size).transpose()?;
        o.limits.max_pixels = self.max_pixels.unwrap_or(o.limits.max_pixels);
        if self.threads == Some(0) {
            return Err(Error::usage("--threads must be at least 1"));
        }
        o.threads = self.threads.unwrap_or(0);
        if let Some(d) = &self.temp_dir {
            if !d.is_dir() {
                let e = std::io::Error::new(std::io::ErrorKind::NotFound, "--temp-dir is not a directory");
                return Err(Error::io(d, e));
            }
        }
        o.temp_dir = self.temp_dir.clone();
        o.cancel = self.cancel.clone();
        o.tile = self.tile.unwrap_or(o.tile);
        o.level = self.level;
        if let Some(q) = self.quality.filter(|q| !(1..=100).contains(q)) {
            return Err(Error::usage(format!("--quality {q}: give 1 to 100")));
        }
        o.quality = self.quality;
        if let Some(d) = self.dpi.filter(|d| !(d.is_finite() && *d > 0.0 && *d <= 100_000.0)) {
            return Err(Error::usage(format!("--dpi {d}: give a resolution between 0 and 100000 pixels per inch")));
        }
        o.dpi = self.dpi;
        if let Some(s) = &self.subsampling {
            let names = crate::sink::Subsampling::ALL.map(crate::sink::Subsampling::name);
            o.subsampling = Some(named("--subsampling", s, &names, crate::sink::Subsampling::from_name)?);
        }
        o.pyramid = self.pyramid.unwrap_or(false);
        o.shard = self.shard.unwrap_or(0);
        o.model_passes = self.model_passes.unwrap_or(1);
        o.model = self.open_model(progress)?;
        o.faces = self.restore_options()?;
        #[cfg(feature = "testing")]
        {
            // Crash-test hook (tests: resume, units): die by SIGKILL after N durable tiles.
            let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
            o.hooks.kill_after_tiles = var("GIGASCALE_TEST_KILL_AFTER_TILES");
            o.hooks.gpu_max_buffer = var("GIGASCALE_TEST_GPU_MAX_BUFFER");
        }
        o.validate()?;
        Ok(o)
    }

    /// The model (`--model`, with `--noise` and `--activation-bits`), opened and at its
    /// activation width; measuring a model file on its first use is told to `progress` first.
    fn open_model(&self, progress: &mut dyn FnMut(&crate::Event)) -> Result<Option<Arc<crate::Model>>> {
        let Some(spec) = &self.model else {
            if let Some(n) = self.noise {
                return Err(Error::usage(format!("--noise {n} needs --model (an SRMD model: srmd_x2/3/4)")));
            }
            if let Some(bits) = self.activation_bits {
                return Err(Error::usage(format!("--activation-bits {bits} needs --model")));
            }
            return Ok(None);
        };
        let model = crate::Model::open(spec, &self.model_dirs)?.with_noise(self.noise)?;
        let model = match self.activation_bits {
            Some(bits) => model.with_activation_bits(bits)?,
            None => {
                if model.measures_on_first_use() {
                    progress(&crate::Event::Measuring { model: model.name().to_string() });
                }
                model.with_fitting_activation_bits()?
            }
        };
        Ok(Some(Arc::new(model)))
    }

    /// `faces`, `face_fidelity`, `face_threads`, `face_device`, `onnxruntime` as restoration
    /// options (`None` without `faces`; the others without it are an error). `upscale` and
    /// `serve --faces` both read their flags through it.
    pub fn restore_options(&self) -> Result<Option<crate::faces::RestoreOptions>> {
        let Some(model) = &self.faces else {
            return match (self.face_fidelity, self.face_threads, &self.face_device) {
                (None, None, None) => Ok(None),
                _ => Err(Error::usage("--face-fidelity, --face-threads and --face-device are for --faces MODEL.onnx")),
            };
        };
        let mut r = crate::faces::RestoreOptions::new(model);
        r.fidelity = self.face_fidelity.unwrap_or(r.fidelity);
        r.runtime = self.onnxruntime.clone();
        r.face_threads = self.face_threads.unwrap_or(r.face_threads);
        if let Some(d) = &self.face_device {
            r.device = d.parse()?;
        }
        Ok(Some(r))
    }

    /// The output size asked for: a scale or dimensions (in pixels, or printed at `dpi`), not
    /// both.
    fn size(&self) -> Result<Size> {
        let scaled = self.scale.is_some() || self.scale_x.is_some() || self.scale_y.is_some();
        let printed = self.print_width.is_some() || self.print_height.is_some();
        if printed {
            if scaled || self.width.is_some() || self.height.is_some() {
                return Err(Error::usage("--print-width/--print-height replace --scale, --width and --height"));
            }
            let dpi =
                self.dpi.ok_or_else(|| Error::usage("--print-width/--print-height need --dpi (e.g. --dpi 300)"))?;
            let px = |flag: &str, v: &Option<String>| -> Result<Option<u32>> {
                let Some(v) = v else { return Ok(None) };
                let inches = parse_length(v).ok_or_else(|| {
                    Error::usage(format!("{flag} {v:?}: give a length such as 2m, 150cm, 600mm or 40in"))
                })?;
                let n = (inches * dpi).round();
                if !(1.0..=u32::MAX as f64).contains(&n) {
                    return Err(Error::usage(format!("{flag} {v} at {dpi} dpi is {n} pixels")));
                }
                Ok(Some(n as u32))
            };
            let (width, height) = (px("--print-width", &self.print_width)?, px("--print-height", &self.print_height)?);
            return Ok(Size::Dimensions { width, height });
        }
        let sized = self.width.is_some() || self.height.is_some();
        match (scaled, sized) {
            (true, true) => Err(Error::usage(
                "give either a scale (--scale/--scale-x/--scale-y) or a size (--width/--height), not both",
            )),
            (false, false) => Err(Error::usage("give --scale F, or --width W and/or --height H")),
            (true, false) => {
                let need = |flag: &str| Error::usage(format!("{flag} needs --scale-x and --scale-y, or --scale"));
                let x = self.scale_x.or(self.scale).ok_or_else(|| need("--scale-y"))?;
                let y = self.scale_y.or(self.scale).ok_or_else(|| need("--scale-x"))?;
                Ok(Size::Scale { x, y })
            }
            (false, true) => Ok(Size::Dimensions { width: self.width, height: self.height }),
        }
    }

    /// This request with the run-time fields of `runtime` — budget, GPU memory, pixel limit,
    /// threads, backend, temp dir, cancel flag: what one run of a planned job chooses for
    /// itself, none of which changes a byte of the output.
    pub fn with_runtime(&self, runtime: &Request) -> Request {
        Request {
            max_memory: runtime.max_memory.clone(),
            gpu_memory: runtime.gpu_memory.clone(),
            max_pixels: runtime.max_pixels,
            threads: runtime.threads,
            backend: runtime.backend.clone(),
            temp_dir: runtime.temp_dir.clone(),
            cancel: runtime.cancel.clone(),
            onnxruntime: runtime.onnxruntime.clone().or_else(|| self.onnxruntime.clone()),
            ..self.clone()
        }
    }
}

impl Options {
    /// The request that gives these options' output bytes for an output of `out` pixels:
    /// the fields that shape the bytes (size, filter, precision, tiling, compression,
    /// pyramid, shard), none of the run-time ones. What a distributed plan records.
    pub fn shaping_request(&self, out: (u32, u32)) -> Request {
        let precision = if self.gpu_f16 { "f16" } else { self.intermediate.name() };
        Request {
            width: Some(out.0),
            height: Some(out.1),
            filter: Some(self.filter.name().into()),
            precision: Some(precision.into()),
            tile: Some(self.tile),
            compression: Some(self.compression.name().into()),
            level: self.level,
            pyramid: Some(self.pyramid),
            shard: Some(self.shard),
            ..Request::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_sizes_become_pixels_at_the_resolution() {
        assert_eq!(parse_length("2m"), Some(2.0 / 0.0254));
        assert_eq!(parse_length("254 mm"), Some(10.0));
        assert_eq!(parse_length("40in"), Some(40.0));
        assert_eq!(parse_length("5.08cm"), Some(2.0));
        for bad in ["", "2 furlongs", "-1m", "m", "0in"] {
            assert_eq!(parse_length(bad), None, "{bad}");
        }
        let r = Request { print_width: Some("2m".into()), dpi: Some(300.0), ..Request::default() };
        assert_eq!(r.options().unwrap().size, Size::Dimensions { width: Some(23622), height: None });
        let no_dpi = Request { print_width: Some("2m".into()), ..Request::default() };
        assert!(no_dpi.options().unwrap_err().to_string().contains("--dpi"));
        let both = Request { print_width: Some("2m".into()), dpi: Some(300.0), width: Some(5), ..Request::default() };
        assert!(both.options().unwrap_err().to_string().contains("replace"));
    }

    #[test]
    fn scale_and_size_exclude_each_other_and_one_is_needed() {
        let e = |r: Request| r.options().unwrap_err().to_string();
        assert!(e(Request::default().scale(2.0).width(10)).contains("not both"));
        assert!(e(Request::default()).contains("give --scale"));
        let r = Request { scale_x: Some(2.0), ..Request::default() };
        assert!(e(r).contains("--scale-x needs"), "a lone --scale-x names what it needs");
        let o = Request { scale_x: Some(2.0), scale: Some(3.0), ..Request::default() }.options().unwrap();
        assert_eq!(o.size, Size::Scale { x: 2.0, y: 3.0 });
    }

    #[test]
    fn names_and_sizes_are_checked_with_the_flag_named() {
        let e = |r: Request| r.options().unwrap_err().to_string();
        assert!(e(Request::default().scale(2.0).compression("rar")).contains("--compression \"rar\""));
        assert!(e(Request::default().scale(2.0).backend("tpu")).contains("auto, gpu, cpu"));
        assert!(e(Request::default().scale(2.0).precision("f64")).contains("exact, rounded, f16"));
        assert!(e(Request::default().scale(2.0).max_memory("lots")).contains("invalid size"));
        assert!(e(Request::default().scale(2.0).threads(0)).contains("--threads"));
        let o = Request::default().scale(2.0).precision("rounded").compression("zstd").options().unwrap();
        assert_eq!((o.intermediate, o.compression), (Intermediate::Rounded, Compression::Zstd));
    }

    #[test]
    fn a_plans_record_round_trips_and_takes_the_runs_own_runtime() {
        let o = Request::default().scale(3.0).filter("bicubic").tile(128).pyramid(true).options().unwrap();
        let record = serde_json::to_string(&o.shaping_request((300, 200))).unwrap();
        let back: Request = serde_json::from_str(&record).unwrap();
        let run = Request::default().max_memory("64M").threads(3).backend("cpu");
        let p = back.with_runtime(&run).options().unwrap();
        assert_eq!(
            (p.size, p.filter, p.tile, p.pyramid),
            (Size::Dimensions { width: Some(300), height: Some(200) }, o.filter, 128, true)
        );
        assert_eq!((p.limits.max_memory, p.threads, p.backend), (64 << 20, 3, Backend::Cpu));
        assert!(serde_json::from_str::<Request>(r#"{"scale":2,"colour":"red"}"#).is_err(), "unknown fields refused");
    }
}
