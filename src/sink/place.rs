//! Where an output goes: its kind, from its name ([`OutputKind`]), and the one rule for what
//! may stand there already ([`may_write`]): never the input, an existing output only with
//! `--overwrite` and only one of the kind being written, in a directory that exists. The file
//! system and an object store each say what they find ([`Found`]); the rule is the same.

use crate::error::{Error, Result};
use std::path::Path;

/// The output container, chosen from the output's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputKind {
    /// `.tif` / `.tiff`: tiled TIFF, BigTIFF when needed.
    Tiff,
    /// `.png`: streamed PNG.
    Png,
    /// `.jpg` / `.jpeg`: streamed baseline JPEG (8-bit, no alpha, at most 65535 px a side).
    Jpeg,
    /// `.webp`: lossless WebP, streamed in two passes (at most 16383 px a side).
    Webp,
    /// `.zarr` (`OUT.ome.zarr`): a sharded OME-Zarr 0.5 directory (or bucket prefix).
    Zarr,
}

impl OutputKind {
    /// From a path's extension.
    ///
    /// ```
    /// use gigascale::OutputKind;
    /// assert_eq!(OutputKind::from_path("a/b.TIF".as_ref()).unwrap(), OutputKind::Tiff);
    /// assert_eq!(OutputKind::from_path("s3://b/x.ome.zarr".as_ref()).unwrap(), OutputKind::Zarr);
    /// assert!(OutputKind::from_path("x.bmp".as_ref()).is_err());
    /// ```
    pub fn from_path(path: &Path) -> Result<OutputKind> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("tif") | Some("tiff") => Ok(OutputKind::Tiff),
            Some("png") => Ok(OutputKind::Png),
            Some("jpg") | Some("jpeg") => Ok(OutputKind::Jpeg),
            Some("webp") => Ok(OutputKind::Webp),
            Some("zarr") => Ok(OutputKind::Zarr),
            _ => Err(Error::usage(format!(
                "{}: unknown output type; name it .tif/.tiff (tiled TIFF), .png, .jpg, .webp or .ome.zarr (sharded OME-Zarr)",
                path.display()
            ))),
        }
    }

    /// Whether this kind of output is a directory (or a bucket prefix) rather than a file.
    pub fn is_dir(self) -> bool {
        self == OutputKind::Zarr
    }
}

/// What stands where an output is to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Found {
    /// Nothing.
    Nothing,
    /// The input itself (the same file).
    Input,
    /// Something else.
    Existing {
        /// A directory (or bucket prefix), not a file.
        dir: bool,
        /// An output gigascale wrote, of the kind being written.
        ours: bool,
    },
}

impl Found {
    /// What the file system holds at `output`; `ours` tells whether a directory there is a
    /// gigascale output (any file may be replaced by a file output).
    pub fn on_disk(input: &Path, output: &Path, ours: &dyn Fn(&Path) -> bool) -> Found {
        let Ok(m) = std::fs::symlink_metadata(output) else { return Found::Nothing };
        if let (Ok(a), Ok(b)) = (std::fs::metadata(input), std::fs::metadata(output)) {
            use std::os::unix::fs::MetadataExt;
            if a.dev() == b.dev() && a.ino() == b.ino() {
                return Found::Input;
            }
        }
        let dir = m.is_dir();
        Found::Existing { dir, ours: if dir { ours(output) } else { true } }
    }
}

/// The one clobbering rule. `name` is the output as the user wrote it.
pub fn may_write(name: &str, kind: OutputKind, found: Found, overwrite: bool) -> Result<()> {
    match found {
        Found::Nothing => Ok(()),
        Found::Input => Err(Error::usage(format!("{name}: output is the input file; refusing to overwrite the input"))),
        Found::Existing { dir: true, .. } if !kind.is_dir() => {
            Err(Error::usage(format!("{name}: output is a directory")))
        }
        Found::Existing { .. } if !overwrite => {
            Err(Error::usage(format!("{name}: already exists (pass --overwrite to replace it)")))
        }
        Found::Existing { dir, ours } if kind.is_dir() && !(dir && ours) => {
            Err(Error::usage(format!("{name}: exists and is not a gigascale OME-Zarr output; refusing to replace it")))
        }
        Found::Existing { .. } => Ok(()),
    }
}

/// Checks that a local `output` of `kind` may be written for `input` ([`may_write`] on what
/// the file system holds), and that its directory exists. `ours` recognises a gigascale
/// directory output.
pub fn check_local(
    input: &Path,
    output: &Path,
    kind: OutputKind,
    overwrite: bool,
    ours: &dyn Fn(&Path) -> bool,
) -> Result<()> {
    may_write(&output.display().to_string(), kind, Found::on_disk(input, output, ours), overwrite)?;
    let dir = crate::store::parent_dir(output);
    if !dir.is_dir() {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, "output directory does not exist");
        return Err(Error::io(dir, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_for_every_kind_of_output() {
        let tif = |found, overwrite| may_write("o", OutputKind::Tiff, found, overwrite).map_err(|e| e.to_string());
        let zarr = |found, overwrite| may_write("o", OutputKind::Zarr, found, overwrite).map_err(|e| e.to_string());
        let file = Found::Existing { dir: false, ours: true };
        let our_dir = Found::Existing { dir: true, ours: true };
        let their_dir = Found::Existing { dir: true, ours: false };
        assert!(tif(Found::Nothing, false).is_ok() && zarr(Found::Nothing, false).is_ok());
        for overwrite in [false, true] {
            assert!(tif(Found::Input, overwrite).unwrap_err().contains("is the input"));
            assert!(zarr(Found::Input, overwrite).unwrap_err().contains("is the input"));
            assert!(tif(our_dir, overwrite).unwrap_err().contains("is a directory"));
        }
        assert!(tif(file, false).unwrap_err().contains("already exists"));
        assert!(tif(file, true).is_ok());
        assert!(zarr(our_dir, false).unwrap_err().contains("already exists"));
        assert!(zarr(our_dir, true).is_ok());
        assert!(zarr(their_dir, true).unwrap_err().contains("not a gigascale"));
        assert!(zarr(file, true).unwrap_err().contains("not a gigascale"));
    }
}
