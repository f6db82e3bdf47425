//! Upscaling files: the container chosen by the output's extension, refusal to clobber,
//! the temporary name and rename (by the sinks), and `--resume`'s journal fingerprint.

use crate::error::{Error, Result};
use crate::job::{run, Report};
use crate::options::Options;
use crate::pixel::Layout;
use crate::progress::Event;
use crate::sink::{self, Compression};
use crate::source;
use std::path::Path;

/// How [`upscale`] treats files (what [`crate::run`], which is handed a sink, has no use for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Files {
    /// Replace an existing output (the input is never overwritten).
    pub overwrite: bool,
    /// Journal the output so that a killed run can be continued by rerunning with `resume`
    /// (TIFF output only).
    pub resume: bool,
}

/// The output container, chosen from the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputKind {
    /// `.tif` / `.tiff`: tiled TIFF, BigTIFF when needed.
    Tiff,
    /// `.png`: streamed PNG.
    Png,
    /// `.zarr` (`OUT.ome.zarr`): a sharded OME-Zarr 0.5 directory.
    Zarr,
}

impl OutputKind {
    /// From a path's extension.
    pub fn from_path(path: &Path) -> Result<OutputKind> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("tif") | Some("tiff") => Ok(OutputKind::Tiff),
            Some("png") => Ok(OutputKind::Png),
            Some("zarr") => Ok(OutputKind::Zarr),
            _ => Err(Error::usage(format!(
                "{}: unknown output type; name it .tif/.tiff (tiled TIFF), .png or .ome.zarr (sharded OME-Zarr)",
                path.display()
            ))),
        }
    }
}

/// Checks that `output` may be written: not the input, not existing unless `overwrite`,
/// in an existing directory.
pub fn check_output(input: &Path, output: &Path, overwrite: bool) -> Result<()> {
    if let (Ok(a), Ok(b)) = (std::fs::metadata(input), std::fs::metadata(output)) {
        use std::os::unix::fs::MetadataExt;
        if a.dev() == b.dev() && a.ino() == b.ino() {
            return Err(Error::usage(format!(
                "{}: output is the input file; refusing to overwrite the input",
                output.display()
            )));
        }
    }
    match std::fs::symlink_metadata(output) {
        Ok(m) if m.is_dir() => {
            return Err(Error::usage(format!("{}: output is a directory", output.display())));
        }
        Ok(_) if !overwrite => {
            return Err(Error::usage(format!("{}: already exists (pass --overwrite to replace it)", output.display())));
        }
        _ => {}
    }
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "output directory does not exist"),
        ));
    }
    Ok(())
}

/// Upscales the image file `input` into `output` (`.tif`, `.tiff`, `.png`, or `.ome.zarr`:
/// see [`crate::zarr`]).
///
/// The output appears only when complete: it is written under a temporary name beside it,
/// synced and renamed. On any error nothing is left behind (with `files.resume`, the partial
/// output and its journal stay for the next run).
pub fn upscale(
    input: &Path,
    output: &Path,
    opts: &Options,
    files: Files,
    progress: &mut dyn FnMut(&Event),
) -> Result<Report> {
    opts.validate()?;
    let kind = OutputKind::from_path(output)?;
    if kind == OutputKind::Png && opts.compression != Compression::None {
        return Err(Error::usage("--compression applies to TIFF output; PNG is always deflate-compressed"));
    }
    if files.resume && opts.gpu_f16 {
        return Err(Error::usage(format!(
            "--precision f16 cannot be combined with --resume: {}",
            crate::options::F16_WHY
        )));
    }
    if kind == OutputKind::Zarr {
        if files.resume {
            return Err(Error::usage(format!(
                "{}: --resume is for TIFF; an OME-Zarr job resumes by unit (gigascale plan / run / finalize)",
                output.display()
            )));
        }
        return crate::zarr::units::upscale_zarr(input, output, opts, files.overwrite, progress);
    }
    check_output(input, output, files.overwrite)?;
    if opts.pyramid && kind != OutputKind::Tiff {
        return Err(Error::usage(format!("{}: --pyramid applies to TIFF output", output.display())));
    }
    if files.resume && kind != OutputKind::Tiff {
        return Err(Error::usage(format!("{}: --resume works for TIFF output only", output.display())));
    }
    let source = source::open(input, opts.max_memory)?;
    let info = source.info();
    let (info_w, info_h) = (info.width, info.height);
    let (w, h) = opts
        .output_size(info.width, info.height)
        .map_err(|e| Error::usage(format!("{}: {}x{} input: {e}", input.display(), info.width, info.height)))?;
    let mut sink: Box<dyn sink::TileSink> = match kind {
        OutputKind::Tiff if files.resume => {
            let fp = fingerprint(input, opts, (w, h), info.layout)?;
            Box::new(
                sink::TiffSink::resumable(output, opts.compression, opts.level, fp)?
                    .pyramid(opts.pyramid, opts.resolved_threads()),
            )
        }
        OutputKind::Tiff => Box::new(
            sink::TiffSink::create(output, opts.compression, opts.level)?
                .pyramid(opts.pyramid, opts.resolved_threads()),
        ),
        OutputKind::Png => {
            if w > i32::MAX as u32 || h > i32::MAX as u32 {
                return Err(Error::usage(format!("{}: {w}x{h} is too large for PNG; name it .tif", output.display())));
            }
            Box::new(sink::PngSink::create(output)?)
        }
        OutputKind::Zarr => return Err(Error::Internal("OME-Zarr output is written by zarr::units".into())),
    };
    run(source, sink.as_mut(), opts, progress).map_err(|e| match e {
        Error::Limit { what, needed, limit, unit, hint } => Error::Limit {
            what: format!("{} ({}x{} -> {w}x{h}): {what}", input.display(), info_w, info_h),
            needed,
            limit,
            unit,
            hint,
        },
        e => e,
    })
}

/// A file's metadata and its first and last MiB (the whole file, twice, when smaller): what
/// identifies an input cheaply, for `--resume` and for a distributed job's plan.
pub(crate) fn file_ends(input: &Path) -> Result<(std::fs::Metadata, Vec<u8>, Vec<u8>)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(input).map_err(|e| Error::io(input, e))?;
    let meta = f.metadata().map_err(|e| Error::io(input, e))?;
    let n = (1u64 << 20).min(meta.len()) as usize;
    let (mut head, mut tail) = (vec![0u8; n], vec![0u8; n]);
    f.read_exact(&mut head).map_err(|e| Error::io(input, e))?;
    f.seek(SeekFrom::End(-(n as i64))).and_then(|_| f.read_exact(&mut tail)).map_err(|e| Error::io(input, e))?;
    Ok((meta, head, tail))
}

/// Identifies a job for `--resume`: the input (size, modification time, first and last MiB),
/// everything that shapes the output bytes, and the version that writes them. Threads, budget
/// and backend are left out: they do not change a single byte.
fn fingerprint(input: &Path, opts: &Options, out: (u32, u32), layout: Layout) -> Result<u64> {
    let (meta, head, tail) = file_ends(input)?;
    let mtime =
        meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let model =
        opts.model.as_ref().map_or(String::new(), |m| format!("{} {:x} {}", m.name(), m.digest(), opts.model_passes));
    let desc = format!(
        "{} {} {mtime} {}x{} {:?} {:?} {} {:?} {:?} {:?} {} {} {model}",
        env!("CARGO_PKG_VERSION"),
        meta.len(),
        out.0,
        out.1,
        opts.filter,
        layout,
        opts.tile,
        opts.compression.name(),
        opts.level,
        opts.intermediate,
        opts.gpu_f16,
        opts.pyramid
    );
    Ok(sink::journal::Fnv::default().bytes(desc.as_bytes()).bytes(&head).bytes(&tail).0)
}
