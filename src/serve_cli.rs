//! `gigascale serve`: arguments -> validated [`gigascale::serve::ServeOptions`] -> the server.

use clap::Args;
use gigascale::budget::parse_size;
use gigascale::serve::{ServeOptions, Server};
use gigascale::Error;
use std::path::PathBuf;

/// Serve the web page and API: upload, queue jobs, watch progress, download, deep zoom.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback unless --allow-remote.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8580")]
    listen: std::net::SocketAddr,
    /// Where uploads, jobs and results live; they survive a restart (interrupted jobs resume).
    #[arg(long, value_name = "DIR", default_value = "gigascale-work")]
    work_dir: PathBuf,
    /// Budget for the whole server: jobs share three quarters, uploads and tiles the rest.
    #[arg(long, value_name = "SIZE", default_value = "1G")]
    max_memory: String,
    /// Largest upload accepted (413 beyond).
    #[arg(long, value_name = "SIZE", default_value = "2G")]
    max_upload: String,
    /// Largest input accepted, in pixels (413 beyond).
    #[arg(long, value_name = "N", default_value_t = gigascale::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Jobs run at once, each under its share of --max-memory.
    #[arg(long, value_name = "N", default_value_t = 1)]
    jobs: usize,
    /// Jobs waiting at most; beyond, 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 16)]
    queue: usize,
    /// Threads each job uses (default: one per CPU).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// No access token (loopback only; any local program can then use the server).
    #[arg(long)]
    no_token: bool,
    /// Allow a non-loopback --listen (the token stays mandatory).
    #[arg(long)]
    allow_remote: bool,
}

/// Runs the server until SIGINT/SIGTERM; prints the page's address (with the token) as the
/// first line on stdout.
pub fn serve(a: &ServeArgs) -> Result<(), Error> {
    let mut o = ServeOptions::new(a.work_dir.clone())?;
    o.listen = a.listen;
    o.max_memory = parse_size(&a.max_memory)?;
    o.max_upload = parse_size(&a.max_upload)?;
    o.max_pixels = a.max_pixels;
    o.jobs = a.jobs;
    o.queue = a.queue;
    o.threads = a.threads.unwrap_or(0);
    o.allow_remote = a.allow_remote;
    if a.no_token {
        o.token = None;
    }
    let server = Server::start(o)?;
    println!("{}", server.url);
    use std::io::Write;
    let _ = std::io::stdout().flush();
    server.run_until_signal()
}
