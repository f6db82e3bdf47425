//! Learned super-resolution: ncnn models, loaded and validated.
//!
//! This is the loader half of the neural engine: [`Model`] reads an ncnn `.param`/`.bin` pair
//! (the two shipped models are embedded in the binary), checks every layer, parameter and
//! weight count, and builds a graph of the supported operations with the numbers the tiler
//! needs: the scale, the receptive radius (halo) and the cost per pixel. Running the graph on
//! tiles is the next step of the engine (see docs/neural.md).

mod graph;
mod param;
mod weights;

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
    param: &'static str,
    bin: &'static [u8],
}

/// The models that ship with gigascale (provenance and licences: `models/README.md`).
pub const BUILTINS: [Builtin; 2] = [
    Builtin {
        name: "photo",
        about: "waifu2x upconv_7 photo: faithful (+2.75 dB over bicubic), soft at large factors",
        licence: "MIT (waifu2x, ncnn conversion), BSD-3-Clause (wheel)",
        param: include_str!("../../models/upconv7-photo-x2.param"),
        bin: include_bytes!("../../models/upconv7-photo-x2.bin"),
    },
    Builtin {
        name: "anime",
        about: "realesr-animevideov3: sharp, for art, line work and anime; paints on photos",
        licence: "BSD-3-Clause (Real-ESRGAN, wheel), MIT (ncnn conversion)",
        param: include_str!("../../models/realesr-animevideov3-x4.param"),
        bin: include_bytes!("../../models/realesr-animevideov3-x4.bin"),
    },
];

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
    graph: graph::Graph,
}

impl Model {
    /// A built-in model by name (`photo`, `anime`).
    pub fn builtin(name: &str) -> Result<Model> {
        let b = BUILTINS.iter().find(|b| b.name == name).ok_or_else(|| {
            let names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
            Error::usage(format!("no built-in model {name:?} (built in: {}; or give a .param file)", names.join(", ")))
        })?;
        Model::from_parts(b.name, b.param, b.bin).map_err(|e| Error::Internal(format!("built-in model {name}: {e}")))
    }

    /// `NAME` for a built-in model, else a path to a `.param` file with its `.bin` beside it.
    pub fn open(spec: &str) -> Result<Model> {
        if BUILTINS.iter().any(|b| b.name == spec) {
            return Model::builtin(spec);
        }
        Model::load(Path::new(spec))
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
        let graph = graph::build(&layers, bin)?;
        Ok(Model { name: name.to_string(), graph })
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
        assert_eq!((anime.scale(), anime.halo(), anime.layers()), (4, 18, 40));
        assert_eq!(anime.macs_per_pixel(), 619_200);
    }

    #[test]
    fn unknown_names_list_the_built_ins() {
        let e = Model::builtin("esrgan").unwrap_err().to_string();
        assert!(e.contains("photo, anime"), "{e}");
    }
}
