//! `gigascale plan`, `run` and `finalize`: arguments -> validated options -> one call of
//! [`gigascale::zarr::units`].

use crate::cli::{display, exit_code, options, report, ProgressArg, Signals, UpscaleArgs};
use clap::Args;
use gigascale::budget::parse_size;
use gigascale::zarr::units;
use gigascale::{Error, Options, Size};
use std::path::PathBuf;

/// Compute one unit of a planned OME-Zarr output.
#[derive(Args)]
pub struct RunArgs {
    /// The planned output (OUT.ome.zarr, written by `gigascale plan`).
    output: PathBuf,
    /// The unit to compute, 0..N (N printed by `plan`).
    #[arg(long, value_name = "I", required_unless_present = "unit_from_env", conflicts_with = "unit_from_env")]
    unit: Option<u32>,
    /// Take the unit from SLURM_ARRAY_TASK_ID (Slurm job arrays) or JOB_COMPLETION_INDEX
    /// (Kubernetes Indexed Jobs).
    #[arg(long)]
    unit_from_env: bool,
    /// Memory budget of this run (default: as for `upscale`).
    #[arg(long, value_name = "SIZE")]
    max_memory: Option<String>,
    /// Worker threads (default: one per CPU).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Compute backend of this run.
    #[arg(long, value_enum, default_value = "auto")]
    backend: gigascale::Backend,
    /// Cap on GPU memory.
    #[arg(long, value_name = "SIZE")]
    gpu_memory: Option<String>,
    /// Directory for the temporary scanline store (the unit's source rows).
    #[arg(long, value_name = "DIR")]
    temp_dir: Option<PathBuf>,
    /// Progress: a bar on a terminal (auto), JSON lines on stderr (json), or none.
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressArg,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `f`, printing its error; the exit status.
fn status(r: Result<(), Error>, sig: Option<&Signals>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            report(&e);
            match (sig, &e) {
                (Some(s), _) => exit_code(&e, s),
                (None, Error::Usage(_)) => 2,
                _ => 1,
            }
        }
    }
}

/// `gigascale plan`.
pub fn plan(a: &UpscaleArgs) -> i32 {
    status(plan_job(a), None)
}

fn plan_job(a: &UpscaleArgs) -> Result<(), Error> {
    if !units::is_zarr(&a.output) {
        return Err(Error::usage(format!("{}: plan writes OME-Zarr; name the output .ome.zarr", a.output.display())));
    }
    let o = options(a)?;
    let p = units::plan(&a.input, &a.output, &o, a.overwrite)?;
    let (across, _) = p.layout.shard_grid();
    if !a.quiet {
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
    // The number of units, alone on stdout, for scripts: N=$(gigascale plan ...).
    println!("{}", p.units);
    Ok(())
}

/// The unit from the arguments or the environment.
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

/// `gigascale run`.
pub fn run(a: &RunArgs, sig: &Signals) -> i32 {
    status(run_unit(a, sig), Some(sig))
}

fn run_unit(a: &RunArgs, sig: &Signals) -> Result<(), Error> {
    let unit = unit_of(a)?;
    let mut o = Options::new(Size::Scale { x: 1.0, y: 1.0 });
    if let Some(m) = &a.max_memory {
        o.max_memory = parse_size(m)?;
    }
    if a.threads == Some(0) {
        return Err(Error::usage("--threads must be at least 1"));
    }
    o.threads = a.threads.unwrap_or(0);
    o.backend = a.backend;
    o.gpu_memory = a.gpu_memory.as_deref().map(parse_size).transpose()?;
    o.temp_dir = a.temp_dir.clone();
    o.cancel = Some(sig.any.clone());
    #[cfg(feature = "testing")]
    {
        o.hooks.kill_after_tiles = std::env::var("GIGASCALE_TEST_KILL_AFTER_TILES").ok().and_then(|v| v.parse().ok());
    }
    let mut d = display(a.progress, a.quiet, a.max_memory.is_some());
    let r = units::run_unit(&a.output, unit, &o, &mut |e| d.on_event(e));
    d.clear();
    let r = r?;
    if !a.quiet {
        let name = PathBuf::from(format!("{} unit {unit}", a.output.display()));
        d.print_summary(&units::UnitPlan::load(&a.output)?.input, &name, &r);
    }
    Ok(())
}

/// `gigascale finalize`.
pub fn finalize(output: &std::path::Path) -> i32 {
    let r = units::finalize(output).map(|f| {
        let removed = if f.removed > 0 { format!("; removed {} temporary file(s)", f.removed) } else { String::new() };
        eprintln!(
            "gigascale: {} complete: {} shards, {}{removed}",
            output.display(),
            f.shards,
            gigascale::budget::format_size(f.bytes)
        );
    });
    status(r, None)
}
