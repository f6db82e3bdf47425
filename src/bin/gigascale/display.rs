//! What the command prints while a job runs: a progress bar or JSON lines, warnings, and the
//! summary at the end.

use gigascale::{format_size, Event, Report};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;

/// The last 40 characters of a path, for the bar.
fn short(path: &str) -> String {
    let n = path.chars().count();
    let tail: String = path.chars().skip(n.saturating_sub(40)).collect();
    if n > 40 {
        format!("…{tail} ")
    } else {
        format!("{tail} ")
    }
}

/// Where progress goes (`--progress`).
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
pub(crate) enum ProgressMode {
    /// A bar on a terminal, nothing otherwise.
    Auto,
    /// A bar.
    Bar,
    /// JSON lines on stderr (the library's events, serialised).
    Json,
    /// Nothing.
    None,
}

/// The progress display of one job.
pub(crate) struct Display {
    mode: ProgressMode,
    quiet: bool,
    bar: Option<ProgressBar>,
    /// Where the budget came from (`--max-memory` or the default's source).
    budget_source: String,
    summary: String,
    backend: String,
    /// The batch's file in flight (`3/40`).
    file: String,
    /// Faces restored and found (`--faces`).
    faces: Option<(u64, u64)>,
    /// Where the face restorer ran (the last `faces` event says).
    face_device: Option<String>,
}

impl Display {
    /// The display for `--progress`, `--quiet` and whether `--max-memory` was given (the
    /// summary says where the budget came from).
    pub(crate) fn new(progress: ProgressMode, quiet: bool, budget_given: bool) -> Display {
        let mode = match progress {
            _ if quiet && progress != ProgressMode::Json => ProgressMode::None,
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::None,
            m => m,
        };
        let budget_source = if budget_given {
            "--max-memory".to_string()
        } else {
            gigascale::limits::default_budget_at(Path::new("/")).to_string()
        };
        let bar = (mode == ProgressMode::Bar).then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template("{prefix}{msg:>8} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b
        });
        Display {
            mode,
            quiet,
            bar,
            budget_source,
            summary: String::new(),
            backend: String::new(),
            file: String::new(),
            faces: None,
            face_device: None,
        }
    }

    /// Shows one event.
    pub(crate) fn on_event(&mut self, e: &Event) {
        match self.mode {
            ProgressMode::Json => eprintln!("{}", e.to_json()),
            ProgressMode::Bar => self.update_bar(e),
            _ => {}
        }
        let talk = !self.quiet && self.mode != ProgressMode::Json;
        match e {
            Event::Warning { message } if talk => eprintln!("gigascale: warning: {message}"),
            Event::Measuring { model } if talk => eprintln!(
                "gigascale: model {model}: first use of this file: measuring its exact form against its float \
                 network (once; kept in the cache)"
            ),
            Event::Resumed { tiles, total } if talk => {
                eprintln!("gigascale: resuming: {tiles} of {total} tiles are already written")
            }
            Event::Backend { kind, detail } => self.backend = format!("{kind} {detail}"),
            Event::File { index, total, input, .. } => {
                self.file = format!("{}/{total}", index + 1);
                if let Some(b) = &self.bar {
                    b.set_prefix(format!("file {} {}", self.file, short(input)));
                } else if talk {
                    eprintln!("gigascale: [{}] {input}", self.file);
                }
            }
            Event::FileEnd { status, error: Some(why), .. } if talk && status == "failed" => {
                let line = format!("gigascale: [{}] failed: {why}", self.file);
                match &self.bar {
                    Some(b) => b.println(line),
                    None => eprintln!("{line}"),
                }
            }
            Event::NeuralStart { model, pass, passes, input, output, tile, tiles, device, .. }
                if talk && *pass == 1 =>
            {
                let runs = if *passes > 1 { format!(" x{passes} passes") } else { String::new() };
                eprintln!(
                    "gigascale: model {model}{runs}: {}x{} -> {}x{} in {tiles} tiles of {tile} px on {device}, then the \
                     resampler",
                    input.0, input.1, output.0, output.1
                );
            }
            Event::Faces { done, found, device } => {
                self.faces = Some((*done, *found));
                self.face_device = device.clone().or(self.face_device.take());
            }
            Event::Start { input, output, tiles, threads, slots, planned_memory, max_memory } => {
                self.summary = format!(
                    "{}x{} -> {}x{} ({tiles} tiles, {threads} threads, {slots} tile slots, planned memory {} of {} ({}))",
                    input.0,
                    input.1,
                    output.0,
                    output.1,
                    format_size(*planned_memory),
                    format_size(*max_memory),
                    self.budget_source
                );
            }
            _ => {}
        }
    }

    fn update_bar(&self, e: &Event) {
        let Some(b) = &self.bar else { return };
        match e {
            Event::Faces { done, found, .. } => {
                b.set_message("faces");
                b.set_length(*found);
                b.set_position(*done);
            }
            Event::Decode { rows, total } => {
                b.set_message("decode");
                b.set_length(*total);
                b.set_position(*rows);
            }
            Event::Neural { pass, passes, done, total } => {
                let label = if *passes > 1 { format!("model pass {pass}/{passes}") } else { "model".into() };
                if *b.message() != *label {
                    b.set_message(label);
                    b.reset();
                }
                b.set_length(*total);
                b.set_position(*done);
            }
            Event::Tiles { done, total } => {
                if b.message() != "tiles" {
                    b.set_message("tiles");
                    b.reset();
                }
                b.set_length(*total);
                b.set_position(*done);
            }
            Event::Done { .. } if self.file.is_empty() => b.finish_and_clear(),
            _ => {}
        }
    }

    /// A batch's closing lines: the counts, then each failure with its reason.
    pub(crate) fn print_batch(&self, r: &gigascale::BatchReport) {
        if self.quiet && r.failed.is_empty() {
            return;
        }
        eprintln!(
            "gigascale: batch: {} done, {} skipped (output already there), {} failed",
            r.done.len(),
            r.skipped.len(),
            r.failed.len()
        );
        for (file, why) in &r.failed {
            eprintln!("  failed: {}: {why}", file.display());
        }
    }

    /// Removes the bar (after success or failure).
    pub(crate) fn clear(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    /// The closing lines: sizes, plan, backend, bytes and stage times.
    pub(crate) fn print_summary(&self, input: &Path, output: &Path, r: &Report) {
        let s = r.stages;
        let mut model = if s.neural > 0.0 { format!(" model {:.2} s,", s.neural) } else { String::new() };
        if let Some((done, _)) = self.faces {
            model +=
                &format!(" {done} faces restored in {:.2} s (detection {:.2} s),", s.faces, s.faces - s.faces_restore);
            if let Some(d) = self.face_device.as_ref().filter(|d| *d != "cpu") {
                model.insert_str(model.len() - 1, &format!(" on {d}"));
            }
        }
        let gpu = if s.gpu_upload + s.gpu_wait > 0.0 {
            format!(
                ", gpu upload {:.2} s, gpu wait {:.2} s, read-back {:.2} s, {} tiles on the gpu",
                s.gpu_upload, s.gpu_wait, s.gpu_readback, s.gpu_tiles
            )
        } else {
            String::new()
        };
        eprintln!(
            "gigascale: {} -> {}: {}\n  backend {}\n  {} written in {:.2} s (decode {:.2} s,{model} compute {:.2} s, encode {:.2} s, write {:.2} s{gpu}; compute and encode are CPU seconds over all workers)",
            input.display(),
            output.display(),
            self.summary,
            self.backend,
            format_size(r.bytes),
            r.seconds,
            s.decode,
            s.compute,
            s.encode,
            s.write
        );
    }
}
