//! The tile stage's plug for accelerators: a [`TileDevice`] computes tiles beside (or instead
//! of) the CPU workers. The GPU backend implements it (`gpu/driver.rs`); the executor knows
//! only this trait, so it compiles the same with or without a GPU, and `backend.rs` — above
//! both — decides which device, if any, plugs in.

use super::ring::{Feed, Msg};
use super::{DeviceTimes, Notice};
use crate::store::Rows;
use crossbeam_channel::{Receiver, Sender};

/// A device that computes tiles.
pub(crate) trait TileDevice: Send {
    /// Runs until `jobs` closes: computes the tiles it takes and sends each on to `out`,
    /// marked computed, or not (the workers then compute it on the CPU — after a device
    /// failure, say, which it reports as a [`Notice::Warning`]). Returns its times.
    fn drive(
        self: Box<Self>,
        jobs: Receiver<Msg>,
        out: Sender<Msg>,
        rows: &(dyn Rows + Sync),
        notices: &Sender<Notice>,
    ) -> DeviceTimes;
}

/// Opens the device on its own thread (opening a Vulkan device takes 0.1–0.4 s, while the CPU
/// workers already compute): the device and, if it was not announced before the job, the
/// detail of a second `backend` event; or why it cannot be used (the CPU then does every tile).
pub(crate) type DeviceOpener<'a> =
    Box<dyn FnOnce() -> std::result::Result<(Box<dyn TileDevice>, Option<String>), String> + Send + 'a>;

/// Starts the device thread, if there is a device, and returns where the workers find tiles.
///
/// Without a device the workers take the planner's jobs directly. With one, the device thread
/// opens it (announcing it, or why it cannot be used, as a [`Notice::Backend`]), takes the
/// planner's jobs and hands computed tiles to the workers; when `shared` (`auto`), the workers
/// also take planner jobs whenever no computed tile is waiting. The handle yields the device's
/// times.
pub(crate) fn spawn<'scope, 'env>(
    sc: &'scope std::thread::Scope<'scope, 'env>,
    device: Option<DeviceOpener<'env>>,
    shared: bool,
    jobs: Receiver<Msg>,
    rows: &'env (dyn Rows + Sync),
    notices: Sender<Notice>,
) -> (Feed, Option<std::thread::ScopedJoinHandle<'scope, DeviceTimes>>) {
    let Some(open) = device else {
        return (Feed { computed: None, jobs: Some(jobs) }, None);
    };
    let (work_tx, work_rx) = crossbeam_channel::bounded::<Msg>(jobs.capacity().unwrap_or(1).max(1));
    let device_jobs = jobs.clone();
    let handle = sc.spawn(move || match open() {
        Ok((device, detail)) => {
            if let Some(detail) = detail {
                let _ = notices.send(Notice::Backend { kind: "gpu+cpu", detail });
            }
            device.drive(device_jobs, work_tx, rows, &notices)
        }
        Err(reason) => {
            let _ = notices.send(Notice::Backend { kind: "cpu", detail: format!("({reason})") });
            DeviceTimes::default()
        }
    });
    (Feed { computed: Some(work_rx), jobs: shared.then_some(jobs) }, Some(handle))
}
