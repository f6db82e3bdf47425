//! The command line (clap) and its one mapping into the library's [`Request`]: field for field,
//! no checks here — `Request::options` validates every value, for the command line as for the
//! unit plans and the server. Names offered by `--help` come from the library's own lists.

use crate::display::ProgressMode;
use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand};
use gigascale::{Backend, Compression, Filter, Request, PRECISIONS};
use std::path::PathBuf;

/// Upscale images to gigapixel size with bounded memory.
///
/// The output is never held whole: the input is decoded into a memory-mapped temporary store,
/// the output is cut into tiles that are resampled on the GPU or on all CPU cores and written
/// as they complete to a tiled (Big)TIFF or a sharded OME-Zarr (which a job can also write from
/// many machines: plan / run / finalize), or streamed to a PNG, JPEG or lossless WebP. Peak
/// memory stays under --max-memory. Both backends produce the same bytes. Photos are turned
/// upright by their EXIF orientation; resolution, EXIF, XMP and ICC profile are carried over.
///
/// Learned upscaling models (waifu2x `photo`, Real-ESRGAN `anime`, or any ncnn model of the
/// supported layers): `--model` runs one before the resampler; `gigascale models` lists them.
#[derive(Parser)]
#[command(name = "gigascale", version, propagate_version = true, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
pub(crate) enum Cmd {
    /// Resize IN into OUT (.tif/.tiff: tiled TIFF, BigTIFF when over 4 GiB; .png: PNG; .jpg:
    /// JPEG; .webp: WebP, lossless, lossy with --quality; .ome.zarr: sharded OME-Zarr, a
    /// directory or s3://bucket/path.ome.zarr). IN and OUT may be directories (a batch).
    ///
    /// Examples:
    ///   gigascale upscale photo.jpg wall.tif --scale 15 --max-memory 64M
    ///   gigascale upscale photo.jpg print.tif --width 8000
    ///   gigascale upscale scan.tif out.tif --width 8000 --height 3000 --filter bicubic
    ///   gigascale upscale photo.jpg wall.tif --scale 15 --compression zstd --resume
    ///   gigascale upscale photo.jpg small.tif --scale 15 --compression zstd --precision rounded
    ///   gigascale upscale photo.jpg wall.tif --scale 30 --backend gpu --gpu-memory 256M
    ///   gigascale upscale big.png small.png --scale 0.3
    ///   gigascale upscale photo.jpg print.tif --model photo --scale 6
    ///   gigascale upscale drawing.png big.png --model anime --scale 3   (x4 model, then x0.75)
    ///   gigascale upscale photo.jpg x8.tif --model photo --model-passes 3 --scale 8
    ///   gigascale upscale photo.jpg print.jpg --print-width 2m --dpi 300 --quality 92
    ///   gigascale upscale photo.jpg web.webp --scale 2 --quality 85
    ///   gigascale upscale photos/ big/ --recursive --format jpg --scale 4
    #[command(verbatim_doc_comment)]
    Upscale(UpscaleArgs),
    /// Cut a job into units for many processes or machines: write OUT.ome.zarr's metadata and
    /// plan, print the number of units N. Then run `gigascale run OUT --unit I` for every I in
    /// 0..N (anywhere that sees IN and OUT, in any order, any number at once), then
    /// `gigascale finalize OUT`. The result equals `gigascale upscale IN OUT.ome.zarr` byte for
    /// byte. Takes every option of `upscale`.
    ///
    /// Examples:
    ///   gigascale plan slide.tif big.ome.zarr --scale 8 --pyramid
    ///   seq 0 $((N-1)) | xargs -P4 -I{} gigascale run big.ome.zarr --unit {}
    ///   gigascale finalize big.ome.zarr
    /// Slurm: sbatch --array=0-$((N-1)) --wrap 'gigascale run big.ome.zarr --unit-from-env'
    /// (docs/distributed.md: Dask, Slurm, Kubernetes Indexed Jobs).
    #[command(verbatim_doc_comment)]
    Plan(UpscaleArgs),
    /// Compute one unit (a row of shards, every pyramid level) of a planned OME-Zarr output.
    /// Rerunning a unit, or running it twice at once, gives the same bytes.
    Run(RunArgs),
    /// Check that every shard of a planned output exists, remove temporary files of interrupted
    /// runs and write the completion marker; lists the units to rerun otherwise (exit 1).
    Finalize {
        /// The planned output (OUT.ome.zarr).
        output: PathBuf,
    },
    /// List GPU adapters with the limits that matter to gigascale.
    Devices,
    /// List the learned upscaling models: the built-in ones, and every ncnn model (.param with
    /// its .bin beside it) in the model directories — --model-dir, $GIGASCALE_MODELS,
    /// ~/.local/share/gigascale/models — with its scale, receptive radius (the halo each tile
    /// reads), cost, licence where known, or why it cannot run. With MODEL, that one model and
    /// its fidelity: how far gigascale's exact integer engine is from the network's float
    /// result on a test image (ncnn's own results are 1-2 levels from it). Use one with `upscale --model NAME|PATH.param` (docs/neural.md, README: getting models).
    Models {
        /// A model to check: a name, or an ncnn .param file (its .bin lies beside it).
        model: Option<String>,
        /// Another directory to search for models (before the others; may be repeated).
        #[arg(long, value_name = "DIR")]
        model_dir: Vec<PathBuf>,
    },
    /// Serve a web page and JSON API on this machine: upload images, queue jobs with a cancel
    /// that works, watch progress (Server-Sent Events), download (with resume), and look at
    /// results in a deep-zoom viewer with a before/after slider. Prints the page's address,
    /// with its access token, as the first line.
    ///
    /// Examples:
    ///   gigascale serve
    ///   gigascale serve --listen 127.0.0.1:9000 --work-dir ~/upscales --max-memory 4G --jobs 2
    #[cfg(feature = "serve")]
    #[command(verbatim_doc_comment)]
    Serve(ServeArgs),
    /// Find faces in IN with the bundled RetinaFace detector (MobileNet-0.25, MIT): score, box
    /// and five landmarks (eyes, nose, mouth corners) per face, in input pixels, best first.
    /// The image is read in tiles with a margin as wide as the detector's receptive field, so
    /// the results are those of the whole image at once, within --max-memory. Faces from about
    /// 10 to 600 pixels across are found.
    ///
    /// Examples:
    ///   gigascale faces group.jpg
    ///   gigascale faces scan.tif --json --max-memory 256M > faces.json
    #[command(verbatim_doc_comment)]
    Faces(FacesArgs),
    /// Print an image's size, channels, depth, format and tiling (or, for an ncnn .param
    /// file, the model's scale, halo and cost).
    Info {
        /// Image file (JPEG, PNG or TIFF), or an ncnn model (.param).
        file: PathBuf,
    },
}

/// `faces IN`.
#[derive(Args)]
pub(crate) struct FacesArgs {
    /// Image file (JPEG, PNG or TIFF).
    pub(crate) input: PathBuf,
    /// Print JSON (file, width, height, faces: score, box [left, top, right, bottom],
    /// landmarks [[x, y] x 5]) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Keep faces scoring above this (0-1).
    #[arg(long, value_name = "SCORE", default_value_t = 0.8)]
    pub(crate) threshold: f32,
    /// Memory budget: 512K, 64M, 2G or bytes (default: as for upscale).
    #[arg(long, value_name = "SIZE")]
    pub(crate) max_memory: Option<String>,
    /// Worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
    /// Directory for the temporary scanline store (default: the system temp directory).
    #[arg(long, value_name = "DIR")]
    pub(crate) temp_dir: Option<PathBuf>,
    /// Tile core edge in pixels, a multiple of 32 (default: the largest the budget allows).
    /// The faces found do not depend on it.
    #[arg(long, value_name = "PX", hide = true)]
    pub(crate) tile: Option<u32>,
}

/// `upscale IN OUT` and `plan IN OUT`.
#[derive(Args)]
pub(crate) struct UpscaleArgs {
    /// Input image: JPEG, PNG or TIFF (format is detected from the content). Or a directory:
    /// every image in it is upscaled into the OUT directory (a batch; see --recursive).
    pub(crate) input: PathBuf,
    /// Output: .tif/.tiff, .png, .jpg, .webp (lossless), or .ome.zarr (sharded OME-Zarr 0.5, zstd; see
    /// `gigascale plan`). Written under a temporary name, renamed when complete. For a
    /// directory IN, a directory (created if needed).
    pub(crate) output: PathBuf,
    #[command(flatten)]
    shape: ShapeArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Replace OUT if it exists (the input is never overwritten).
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Journal the output so that a killed run continues where it stopped when the same
    /// command is run again with --resume (TIFF output). The result is byte-identical to an
    /// uninterrupted run; a changed input or changed options are refused.
    #[arg(long)]
    pub(crate) resume: bool,
    #[command(flatten)]
    pub(crate) batch: BatchArgs,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

/// A directory IN: the batch's own flags.
#[derive(Args)]
#[command(next_help_heading = "Batch (IN and OUT are directories)")]
pub(crate) struct BatchArgs {
    /// Also the images in IN's subdirectories, their tree mirrored in OUT.
    #[arg(long)]
    pub(crate) recursive: bool,
    /// Output format for every file: tif, png, jpg or webp (default: each input's own). Files whose
    /// output already exists are skipped, so rerunning a cut-off batch continues it.
    #[arg(long, value_name = "tif|png|jpg|webp")]
    pub(crate) format: Option<String>,
    /// Files upscaled at once, sharing --max-memory and the threads (default 1: one after
    /// another with the whole budget).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) jobs: usize,
}

/// What shapes the output's bytes.
#[derive(Args)]
struct ShapeArgs {
    /// Scale factor for both axes (real, > 0; below 1 downscales with antialiasing).
    #[arg(long, value_name = "F")]
    scale: Option<f64>,
    /// Horizontal scale factor (overrides --scale on that axis).
    #[arg(long, value_name = "F")]
    scale_x: Option<f64>,
    /// Vertical scale factor (overrides --scale on that axis).
    #[arg(long, value_name = "F")]
    scale_y: Option<f64>,
    /// Output width in pixels; the height follows the aspect ratio unless --height is given.
    #[arg(long, value_name = "W")]
    width: Option<u32>,
    /// Output height in pixels; the width follows the aspect ratio unless --width is given.
    #[arg(long, value_name = "H")]
    height: Option<u32>,
    /// The output's resolution in pixels per inch, written into TIFF, PNG and JPEG (default:
    /// the input's, scaled with the image so that its printed size stays the same).
    #[arg(long, value_name = "DPI")]
    dpi: Option<f64>,
    /// The printed width (2m, 150cm, 600mm, 40in): with --dpi, sets the output's width (the
    /// height follows the aspect ratio unless --print-height is given). "This photo at 300
    /// dpi, 2 m wide": --print-width 2m --dpi 300.
    #[arg(long, value_name = "LENGTH")]
    print_width: Option<String>,
    /// The printed height, as --print-width.
    #[arg(long, value_name = "LENGTH")]
    print_height: Option<String>,
    /// Resampling filter (with --model: the filter that takes the model's output to the
    /// requested size).
    #[arg(long, default_value = "lanczos3", value_parser = PossibleValuesParser::new(Filter::ALL.map(Filter::name)))]
    filter: String,
    /// A learned model to run before resampling: photo (waifu2x upconv_7 photo, x2: faithful
    /// detail for photographs), anime (Real-ESRGAN animevideov3, x4: sharp lines for art and
    /// anime, invents texture on photos), or an ncnn .param file with its .bin beside it. The
    /// model enlarges by its own factor (see --model-passes); the resampler then takes the
    /// result to the size asked for (--scale, --width, --height), down as well as up. The
    /// output is the same for every tile size, memory budget, thread count and backend.
    #[arg(long, value_name = "NAME|PATH.param")]
    model: Option<String>,
    /// Passes of --model (a x2 model twice is x4) before the resampler.
    #[arg(long, value_name = "N", default_value_t = 1)]
    model_passes: u32,
    /// The noise level an SRMD model (srmd_x2/3/4) removes, 0-10 (default 3, as
    /// srmd-ncnn-vulkan); its noise-free form is srmdnf_x2/3/4. Other models take no level.
    #[arg(long, value_name = "N")]
    noise: Option<u32>,
    /// Bits of each activation inside --model's exact integer network: 16 or 24 (eight more
    /// bits below each layer's scale: closer to the float network for deep models on dark or
    /// saturated photos — realesrgan-x4plus, Real-CUGAN models-pro and SPAN within 2 levels of
    /// ncnn where 16 bits are 3-14 off; twice the convolutions' work and tensor memory).
    /// Default: 16, or 24 for a model file whose 16-bit form `gigascale models FILE` finds
    /// more than 1 level from its float network (measured on its first use, then kept).
    /// Either width gives the same bytes on the CPU and the GPU.
    #[arg(long, value_name = "16|24")]
    activation_bits: Option<u32>,
    /// Another directory to search for --model names (before $GIGASCALE_MODELS and
    /// ~/.local/share/gigascale/models; may be repeated).
    #[arg(long, value_name = "DIR")]
    model_dir: Vec<PathBuf>,
    /// Restore faces with this model: an ONNX export of CodeFormer or GFPGAN v1.4 (512x512
    /// in and out; you supply it: no registry ships their weights, and their licences differ:
    /// CodeFormer's is non-commercial). Faces are found by the bundled detector (as `gigascale
    /// faces` lists them), each aligned to the FFHQ template, restored once, and blended into
    /// the output with a soft mask, sampled with --filter (a face larger than 512 px in the
    /// output is enlarged by --model first, when there is one); the same bytes for every tile
    /// size, budget and thread count. Needs ONNX Runtime (see --onnxruntime). docs/faces.md.
    #[arg(long, value_name = "MODEL.onnx")]
    faces: Option<PathBuf>,
    /// CodeFormer's fidelity weight w, 0-1: 0 trusts the model's idea of a face, 1 keeps
    /// closest to the input (default 0.5). GFPGAN takes none and ignores it.
    #[arg(long, value_name = "W", requires = "faces")]
    face_fidelity: Option<f32>,
    /// ONNX Runtime's threads within one face (default 1). Its sums change order with this
    /// count, so it is part of what shapes the bytes (like --filter), not taken from
    /// --threads: faces are restored in parallel, one per --threads, whatever this is. Raise
    /// it (e.g. to the core count) for a portrait with one face: it then restores several
    /// times faster, into bytes that differ in the last bit here and there.
    #[arg(long, value_name = "N", requires = "faces")]
    face_threads: Option<usize>,
    /// Where ONNX Runtime restores faces: cpu (default), or cuda / cuda:N for an NVIDIA GPU
    /// (needs the onnxruntime-gpu wheel's library as --onnxruntime, and CUDA 13 with cuDNN
    /// 9). Like --face-threads it shapes the bytes: the GPU's sums round differently, so a
    /// face differs from the CPU's in the last bits here and there; the same GPU gives the
    /// same bytes on every run, tile size, budget and --threads. auto takes the GPU when a
    /// session opens there, else the CPU (the summary says which).
    #[arg(long, value_name = "DEVICE", requires = "faces")]
    face_device: Option<String>,
    /// Output TIFF tile edge in pixels (multiple of 16).
    #[arg(long, value_name = "N", default_value_t = 256)]
    tile: u32,
    /// TIFF compression (deflate, lzw and zstd use the horizontal predictor).
    #[arg(long, default_value = "none", value_parser = PossibleValuesParser::new(Compression::ALL.map(Compression::name)))]
    compression: String,
    /// Compression level. TIFF: deflate 0-12 (default 6), zstd 1-22 (default 3). PNG: 0-9,
    /// 0 stored, 1 fastest (about four times faster to write than the default 6, files 10-25 %
    /// larger), 9 smallest (several times slower).
    #[arg(long, value_name = "N")]
    level: Option<i32>,
    /// JPEG output (.jpg): quality, 1-100 (default 90). Baseline JPEG, streamed band by band;
    /// at most 65535 px a side, 8-bit, no alpha. WebP output (.webp): makes it lossy (VP8,
    /// 4:2:0, alpha kept exactly; streamed); without it WebP is lossless (also streamed).
    #[arg(long, value_name = "N")]
    quality: Option<u8>,
    /// JPEG output: chroma subsampling, 444 (full colour resolution, the default) or 420
    /// (half, smaller files).
    #[arg(long, value_name = "444|420")]
    subsampling: Option<String>,
    /// Add reduced-resolution levels (a pyramid), each half the one before, until one fits
    /// in a tile; what deep-zoom viewers, libvips, OpenSlide, GDAL and tifffile read (TIFF), or
    /// OME-Zarr multiscales (napari, vizarr, neuroglancer). Computed while the full-size image
    /// streams out (about a third more pixels to compress).
    #[arg(long)]
    pyramid: bool,
    /// OME-Zarr: shard edge in pixels, --tile times a power of two (default 16 tiles: 4096).
    /// One shard is one file with one writer; a unit of `gigascale plan` is a row of shards.
    #[arg(long, value_name = "N")]
    shard: Option<u32>,
    /// The value between the two filter passes. exact: 14 (8-bit) / 29 (16-bit) fractional bits,
    /// every sample within 1 step of the true filter output (half a step, plus the weights'
    /// rounding). rounded: rounded to whole steps, vertical pass first, as libvips and Pillow
    /// do: within ~1.25 steps, and zstd/deflate files a third to two fifths smaller (neighbouring
    /// rows share their rounding); same bytes on every backend.
    /// f16: GPU only, half the GPU memory, within 1 LSB at 8 bits (needs shader-f16).
    #[arg(long, default_value = "exact", value_parser = PossibleValuesParser::new(PRECISIONS))]
    precision: String,
}

/// What one run chooses for itself (none of it changes a byte of the output).
#[derive(Args)]
pub(crate) struct RuntimeArgs {
    /// Memory budget for everything the process allocates: 512K, 64M, 2G or bytes.
    /// Default: a quarter of physical RAM or of the container's memory limit (cgroup v1/v2),
    /// whichever is smaller, between 256M and 4G (at most half the limit).
    #[arg(long, value_name = "SIZE")]
    pub(crate) max_memory: Option<String>,
    /// Compute backend: auto uses a hardware GPU with 64-bit integer shaders, when there is one
    /// and --max-memory leaves 192 MiB for its driver beside the job's plan, side by side with
    /// the CPU workers (else the CPU alone); gpu has a GPU compute every tile (software adapters
    /// such as lavapipe included; the driver's memory, 70-190 MiB, may pass a small
    /// --max-memory: the job warns); cpu never opens a GPU.
    #[arg(long, default_value = "auto", value_parser = PossibleValuesParser::new(Backend::ALL.map(Backend::name)))]
    backend: String,
    /// ONNX Runtime's library for --faces (libonnxruntime.so.*). Default: $GIGASCALE_ONNXRUNTIME,
    /// then $ORT_DYLIB_PATH, then the `onnxruntime` Python package of the python3 on PATH
    /// (`pip install onnxruntime` ships the library in onnxruntime/capi/).
    #[arg(long, value_name = "PATH")]
    onnxruntime: Option<PathBuf>,
    /// Cap on GPU memory gigascale may allocate (e.g. 64M); tiles stream through it.
    #[arg(long, value_name = "SIZE")]
    gpu_memory: Option<String>,
    /// Worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Directory for the temporary scanline store (default: the system temp directory).
    /// Use a disk, not a RAM-backed tmpfs.
    #[arg(long, value_name = "DIR")]
    temp_dir: Option<PathBuf>,
    /// Refuse inputs with more pixels than N (0 = no limit; default 4294967296).
    #[arg(long, value_name = "N")]
    max_pixels: Option<u64>,
}

/// What the command prints.
#[derive(Args)]
pub(crate) struct ReportArgs {
    /// Progress: a bar on a terminal (auto), JSON lines on stderr (json), or none.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) progress: ProgressMode,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// `run OUT --unit I`.
#[derive(Args)]
pub(crate) struct RunArgs {
    /// The planned output (OUT.ome.zarr, written by `gigascale plan`).
    pub(crate) output: PathBuf,
    /// The unit to compute, 0..N (N printed by `plan`).
    #[arg(long, value_name = "I", required_unless_present = "unit_from_env", conflicts_with = "unit_from_env")]
    pub(crate) unit: Option<u32>,
    /// Take the unit from SLURM_ARRAY_TASK_ID (Slurm job arrays) or JOB_COMPLETION_INDEX
    /// (Kubernetes Indexed Jobs).
    #[arg(long)]
    pub(crate) unit_from_env: bool,
    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
}

/// `serve`.
#[cfg(feature = "serve")]
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on. Loopback unless --allow-remote.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8580")]
    pub(crate) listen: std::net::SocketAddr,
    /// Where uploads, jobs and results live; they survive a restart (interrupted jobs resume).
    #[arg(long, value_name = "DIR", default_value = "gigascale-work")]
    pub(crate) work_dir: PathBuf,
    /// Budget for the whole server: jobs share three quarters, uploads and tiles the rest.
    #[arg(long, value_name = "SIZE", default_value = "1G")]
    pub(crate) max_memory: String,
    /// Largest upload accepted (413 beyond).
    #[arg(long, value_name = "SIZE", default_value = "2G")]
    pub(crate) max_upload: String,
    /// Largest result a job may make, in bytes of samples (width x height x channels, before
    /// compression); larger requests are refused with 413.
    #[arg(long, value_name = "SIZE", default_value = "8G")]
    pub(crate) max_output: String,
    /// Largest input accepted, in pixels (413 beyond).
    #[arg(long, value_name = "N", default_value_t = gigascale::DEFAULT_MAX_PIXELS)]
    pub(crate) max_pixels: u64,
    /// Jobs run at once, each under its share of --max-memory.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) jobs: usize,
    /// Jobs waiting at most; beyond, 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub(crate) queue: usize,
    /// Threads each job uses (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,
    /// A face restorer (CodeFormer or GFPGAN as ONNX) that jobs may use: the page then shows
    /// a "restore faces" toggle (`"restore_faces": true` in the API). Clients never name files.
    #[arg(long, value_name = "MODEL.onnx")]
    pub(crate) faces: Option<PathBuf>,
    /// CodeFormer's fidelity weight for the server's face restorer, 0-1 (default 0.5).
    #[arg(long, value_name = "W", requires = "faces")]
    pub(crate) face_fidelity: Option<f32>,
    /// ONNX Runtime's threads within one face (as for `upscale --face-threads`).
    #[arg(long, value_name = "N", requires = "faces")]
    pub(crate) face_threads: Option<usize>,
    /// Where the face restorer runs: cpu, cuda, cuda:N or auto (as for `upscale --face-device`).
    #[arg(long, value_name = "DEVICE", requires = "faces")]
    pub(crate) face_device: Option<String>,
    /// ONNX Runtime's library for --faces (as for `upscale --onnxruntime`).
    #[arg(long, value_name = "PATH")]
    pub(crate) onnxruntime: Option<PathBuf>,
    /// No access token (loopback only; any local program can then use the server).
    #[arg(long)]
    pub(crate) no_token: bool,
    /// Allow a non-loopback --listen (the token stays mandatory). On a wildcard address
    /// (0.0.0.0, [::]) the server answers to the machine's own addresses and host name, and
    /// prints a URL for each address.
    #[arg(long)]
    pub(crate) allow_remote: bool,
    /// A further name the server answers to in the Host header (a reverse proxy's public
    /// name, e.g. upscale.example.org); repeatable. Requests naming any other host get 403.
    #[arg(long, value_name = "NAME")]
    pub(crate) allow_host: Vec<String>,
}

impl UpscaleArgs {
    /// The library's request: every shaping and run-time flag, as given.
    pub(crate) fn request(&self) -> Request {
        let s = &self.shape;
        let mut r = self.runtime.request();
        (r.scale, r.scale_x, r.scale_y, r.width, r.height) = (s.scale, s.scale_x, s.scale_y, s.width, s.height);
        (r.filter, r.precision, r.compression) =
            (Some(s.filter.clone()), Some(s.precision.clone()), Some(s.compression.clone()));
        (r.model, r.model_passes, r.model_dirs) = (s.model.clone(), Some(s.model_passes), s.model_dir.clone());
        (r.noise, r.activation_bits) = (s.noise, s.activation_bits);
        (r.faces, r.face_fidelity, r.face_threads) = (s.faces.clone(), s.face_fidelity, s.face_threads);
        r.face_device = s.face_device.clone();
        (r.tile, r.level, r.pyramid, r.shard) = (Some(s.tile), s.level, Some(s.pyramid), s.shard);
        (r.quality, r.subsampling) = (s.quality, s.subsampling.clone());
        (r.dpi, r.print_width, r.print_height) = (s.dpi, s.print_width.clone(), s.print_height.clone());
        r
    }
}

impl RuntimeArgs {
    /// The library's request with the run-time flags alone.
    pub(crate) fn request(&self) -> Request {
        let mut r = Request::default();
        (r.max_memory, r.gpu_memory, r.max_pixels) =
            (self.max_memory.clone(), self.gpu_memory.clone(), self.max_pixels);
        (r.threads, r.backend, r.temp_dir) = (self.threads, Some(self.backend.clone()), self.temp_dir.clone());
        r.onnxruntime = self.onnxruntime.clone();
        r
    }
}
