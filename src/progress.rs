//! Progress events, delivered to a callback on the calling thread, and their JSON form
//! (serde; the schema README shows under "Progress events").

use serde::{Deserialize, Serialize};

/// Time spent per stage, summed over threads, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StageTimes {
    /// Decoding the source into the store (wall time).
    #[serde(rename = "decode_s", serialize_with = "millis")]
    pub decode: f64,
    /// Face detection and restoration (`--faces`), before the tiles.
    #[serde(rename = "faces_s", serialize_with = "millis")]
    pub faces: f64,
    /// Of `faces`, the restorer's part (after detection, aligned crops included).
    #[serde(rename = "faces_restore_s", serialize_with = "millis")]
    pub faces_restore: f64,
    /// The model's passes (wall time; 0 without a model), setup included.
    #[serde(rename = "neural_s", serialize_with = "millis")]
    pub neural: f64,
    /// Of which setting the model up before its first tile: opening the GPU, compiling its
    /// shaders and uploading the weights (near zero on the CPU).
    #[serde(rename = "neural_setup_s", serialize_with = "millis")]
    pub neural_setup: f64,
    /// Of which running the network, on the CPU, or on the GPU as the pass sees it: recording
    /// a tile and waiting for the device (which computes one tile while the next is prepared).
    /// The rest: setup, reading the input windows, placing the results.
    #[serde(rename = "neural_network_s", serialize_with = "millis")]
    pub neural_network: f64,
    /// Resampling (all workers).
    #[serde(rename = "compute_s", serialize_with = "millis")]
    pub compute: f64,
    /// Compressing tiles (all workers).
    #[serde(rename = "encode_s", serialize_with = "millis")]
    pub encode: f64,
    /// Writing tiles and metadata (writer thread).
    #[serde(rename = "write_s", serialize_with = "millis")]
    pub write: f64,
    /// GPU: packing source windows into upload buffers (GPU thread).
    #[serde(rename = "gpu_upload_s", serialize_with = "millis")]
    pub gpu_upload: f64,
    /// GPU: waiting for compute and transfers to finish (GPU thread).
    #[serde(rename = "gpu_wait_s", serialize_with = "millis")]
    pub gpu_wait: f64,
    /// GPU: copying tiles out of read-back buffers (GPU thread).
    #[serde(rename = "gpu_readback_s", serialize_with = "millis")]
    pub gpu_readback: f64,
    /// Choosing the backend and opening the GPU (instance, device, pipelines, buffers) before
    /// the first tile (wall time; near zero on the CPU path).
    #[serde(rename = "backend_init_s", serialize_with = "millis")]
    pub backend_init: f64,
    /// Tiles computed by the GPU (the rest by the CPU workers).
    pub gpu_tiles: u64,
}

/// A progress event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The job is planned and about to start.
    Start {
        /// Source size.
        input: (u32, u32),
        /// Output size.
        output: (u32, u32),
        /// Tiles to produce.
        tiles: u64,
        /// Worker threads.
        threads: usize,
        /// Tile buffers in the ring.
        slots: usize,
        /// Planned peak memory in bytes.
        planned_memory: u64,
        /// The budget in force (`--max-memory` or the default), in bytes.
        max_memory: u64,
    },
    /// The backend in use, and why it was chosen.
    Backend {
        /// `gpu` or `cpu`.
        kind: String,
        /// Adapter name, or the reason for using the CPU.
        detail: String,
    },
    /// Something the user should know that did not stop the job (e.g. a GPU fallback).
    Warning {
        /// The message.
        message: String,
    },
    /// A model file is measured on its first use, before the job is planned: its 16-bit exact
    /// form against its float network, which chooses its activation width (tens of seconds for
    /// a large network on a few cores; once per file, the result kept in the user's cache).
    Measuring {
        /// Model name.
        model: String,
    },
    /// An interrupted run is being continued (`--resume`).
    Resumed {
        /// Tiles already in the output.
        tiles: u64,
        /// Total tiles.
        total: u64,
    },
    /// Source rows decoded so far.
    Decode {
        /// Rows done.
        rows: u64,
        /// Total rows.
        total: u64,
    },
    /// A model pass is planned and about to start.
    NeuralStart {
        /// Model name.
        model: String,
        /// This pass (from 1) and the number of passes.
        pass: u32,
        /// Number of passes.
        passes: u32,
        /// The pass's input and output sizes.
        input: (u32, u32),
        /// Output size of the pass.
        output: (u32, u32),
        /// Tile edge in input pixels.
        tile: u32,
        /// Tiles in the pass.
        tiles: u64,
        /// Planned peak memory of the pass in bytes.
        planned_memory: u64,
        /// Where the convolutions run: `cpu`, or `gpu <adapter>`.
        device: String,
    },
    /// Tiles of a model pass computed so far.
    Neural {
        /// This pass (from 1).
        pass: u32,
        /// Number of passes.
        passes: u32,
        /// Tiles done.
        done: u64,
        /// Tiles in the pass.
        total: u64,
    },
    /// Faces restored so far (`--faces`; `found` were detected).
    Faces {
        /// Faces restored.
        done: u64,
        /// Faces found.
        found: u64,
        /// Where the restorer ran (`cpu`, `cuda:0`): in the last of these events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
    },
    /// Tiles written so far.
    Tiles {
        /// Tiles done.
        done: u64,
        /// Total tiles.
        total: u64,
    },
    /// A batch ([`crate::batch`]) starts file `index` (from 0) of `total`.
    File {
        /// The file's number in the batch, from 0.
        index: u64,
        /// Files in the batch.
        total: u64,
        /// The input file.
        input: String,
        /// Where its output goes.
        output: String,
    },
    /// A batch's file `index` ended: `status` is `done`, `skipped` (its output was already
    /// there) or `failed` (with `error`).
    FileEnd {
        /// The file's number in the batch, from 0.
        index: u64,
        /// `done`, `skipped` or `failed`.
        status: String,
        /// Why it failed.
        error: Option<String>,
    },
    /// The output is complete and in place.
    Done {
        /// Output file size.
        bytes: u64,
        /// Wall time in seconds.
        #[serde(serialize_with = "millis")]
        seconds: f64,
        /// Per-stage times.
        #[serde(flatten)]
        stages: StageTimes,
    },
}

impl Event {
    /// One JSON object, as printed by `--progress json` (serde: the variant's name in
    /// snake case under `"event"`, then its fields; `done` flattens the stage times).
    ///
    /// ```
    /// let e = gigascale::Event::Decode { rows: 3, total: 10 };
    /// assert_eq!(e.to_json(), r#"{"event":"decode","rows":3,"total":10}"#);
    /// let back: gigascale::Event = serde_json::from_str(&e.to_json()).unwrap();
    /// assert_eq!(back, e);
    /// ```
    pub fn to_json(&self) -> String {
        // Serialising these plain fields cannot fail (no maps with non-string keys, no
        // custom serialisers that fail).
        serde_json::to_string(self)
            .unwrap_or_else(|e| serde_json::json!({"event": "warning", "message": e.to_string()}).to_string())
    }
}

/// Seconds as printed: to the millisecond.
fn millis<S: serde::Serializer>(v: &f64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64((v * 1000.0).round() / 1000.0)
}
