//! Where a network's GPU time goes, for benchmarks: with `GIGASCALE_GPU_PROFILE=1` on an
//! adapter with timestamp queries, every compute pass the neural engine records is timed on
//! the device (a timestamp at its start and at its end), and when the network is dropped the
//! totals per kind of pass (the split shader, the tensor-core and the plain convolutions, each
//! elementwise operation) go to stderr (realesrgan-x4plus on a 1000x1000 crop, H200,
//! 2026-12-04):
//!
//! ```text
//! neural profile: 1.508 s in 1935 passes: conv (tensor) 0.912 s (419), concat 0.397 s (966), split 0.125 s (419), sum2 0.060 s (93), ...
//! ```
//!
//! Each submission then waits for the device before the next is recorded, so the whole
//! command is slower; the bytes are the same. Off, it costs one `Option` test a pass.

use std::collections::HashMap;
use std::sync::Mutex;

/// Timestamp pairs one query set holds; passes past it in one submission go untimed.
const PAIRS: u32 = 2048;

/// The knob's features: timestamp queries (written where compute passes begin and end) where
/// the knob is set and the adapter has them, else none.
pub(crate) fn profile_features(adapter: &wgpu::Adapter) -> wgpu::Features {
    let wanted = std::env::var("GIGASCALE_GPU_PROFILE").as_deref() == Ok("1");
    match wanted && adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        true => wgpu::Features::TIMESTAMP_QUERY,
        false => wgpu::Features::empty(),
    }
}

/// The timestamps of one network's passes and their running totals.
pub(crate) struct Profile {
    set: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Nanoseconds per timestamp tick.
    period: f64,
    /// The kind of each pass timed since the last [`Profile::collect`].
    pending: Mutex<Vec<&'static str>>,
    totals: Mutex<Totals>,
}

/// Seconds and passes per kind; passes that found the query set full.
type Totals = (HashMap<&'static str, (f64, u64)>, u64);

impl Profile {
    /// A profile for `device` when the knob is set and the device has timestamp queries.
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Option<Profile> {
        match std::env::var("GIGASCALE_GPU_PROFILE").as_deref() {
            Ok("1") => Profile::on(device, queue),
            _ => None,
        }
    }

    /// A profile for `device` if it has timestamp queries.
    fn on(device: &wgpu::Device, queue: &wgpu::Queue) -> Option<Profile> {
        if !device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return None;
        }
        let set = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("neural-profile"),
            ty: wgpu::QueryType::Timestamp,
            count: 2 * PAIRS,
        });
        let bytes = 2 * PAIRS as u64 * 8;
        let buffer = |usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile"),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        use wgpu::BufferUsages as U;
        Some(Profile {
            set,
            resolved: buffer(U::QUERY_RESOLVE | U::COPY_SRC),
            readback: buffer(U::MAP_READ | U::COPY_DST),
            period: queue.get_timestamp_period() as f64,
            pending: Mutex::default(),
            totals: Mutex::default(),
        })
    }

    /// Where a compute pass of `kind` writes its timestamps, if the query set has room.
    pub(crate) fn pass(&self, kind: &'static str) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        let mut pending = self.pending.lock().ok()?;
        if pending.len() as u32 >= PAIRS {
            if let Ok(mut t) = self.totals.lock() {
                t.1 += 1;
            }
            return None;
        }
        let i = 2 * pending.len() as u32;
        pending.push(kind);
        Some(wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(i),
            end_of_pass_write_index: Some(i + 1),
        })
    }

    /// Reads the timestamps of the passes submitted so far (waiting for the device) and adds
    /// them to the totals.
    pub(crate) fn collect(&self, device: &wgpu::Device, queue: &wgpu::Queue) {
        let Ok(mut pending) = self.pending.lock() else { return };
        let n = pending.len() as u32;
        if n == 0 {
            return;
        }
        let mut enc = device.create_command_encoder(&Default::default());
        enc.resolve_query_set(&self.set, 0..2 * n, &self.resolved, 0);
        enc.copy_buffer_to_buffer(&self.resolved, 0, &self.readback, 0, 2 * n as u64 * 8);
        queue.submit([enc.finish()]);
        let slice = self.readback.slice(..2 * n as u64 * 8);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        let waited = device.poll(wgpu::PollType::wait_indefinitely()).is_ok();
        if let Some(view) = waited.then(|| slice.get_mapped_range().ok()).flatten() {
            let ticks: Vec<u64> = bytemuck::cast_slice(&view).to_vec();
            drop(view);
            if let Ok(mut t) = self.totals.lock() {
                for (kind, pair) in pending.iter().zip(ticks.chunks(2)) {
                    let e = t.0.entry(kind).or_default();
                    e.0 += pair[1].saturating_sub(pair[0]) as f64 * self.period * 1e-9;
                    e.1 += 1;
                }
            }
        }
        self.readback.unmap();
        pending.clear();
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let Ok(t) = self.totals.lock() else { return };
        let mut kinds: Vec<_> = t.0.iter().collect();
        kinds.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        let total: f64 = kinds.iter().map(|k| k.1 .0).sum();
        let passes: u64 = kinds.iter().map(|k| k.1 .1).sum();
        let each: Vec<String> = kinds.iter().map(|(k, (s, n))| format!("{k} {s:.3} s ({n})")).collect();
        eprintln!("neural profile: {total:.3} s in {passes} passes: {}; {} passes untimed", each.join(", "), t.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pass recorded with the profile's timestamps is counted under its kind once
    /// collected. Runs on lavapipe in CI (`GIGASCALE_REQUIRE_GPU=1` makes its absence a failure).
    #[test]
    fn timed_passes_are_counted_by_kind() {
        let Some(a) = super::super::test_adapter() else { return };
        assert!(a.features().contains(wgpu::Features::TIMESTAMP_QUERY), "lavapipe has timestamp queries");
        let l = a.limits();
        let features = wgpu::Features::TIMESTAMP_QUERY;
        let dev =
            super::super::setup::shared_device(&a, l.max_buffer_size, l.max_storage_buffer_binding_size, features)
                .expect("device");
        let p = Profile::on(&dev.device, &dev.queue).expect("a profile on a device with timestamps");
        let module = dev.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: None,
            source: wgpu::ShaderSource::Wgsl("@compute @workgroup_size(1) fn main() {}".into()),
        });
        let pipe = super::super::neural::pipeline(&dev.device, &module, "main");
        let mut enc = dev.device.create_command_encoder(&Default::default());
        for kind in ["noop", "noop", "other"] {
            let timestamp_writes = p.pass(kind);
            assert!(timestamp_writes.is_some());
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes });
            pass.set_pipeline(&pipe);
            pass.dispatch_workgroups(1, 1, 1);
        }
        dev.queue.submit([enc.finish()]);
        p.collect(&dev.device, &dev.queue);
        let t = p.totals.lock().expect("lock");
        assert_eq!(t.0.get("noop").map(|e| e.1), Some(2));
        assert_eq!(t.0.get("other").map(|e| e.1), Some(1));
        assert!(t.0.values().all(|e| e.0 >= 0.0) && t.1 == 0);
        assert!(p.pending.lock().expect("lock").is_empty(), "collected passes are cleared");
    }
}
