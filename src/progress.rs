//! Progress events, delivered to a callback on the calling thread.

/// Time spent per stage, summed over threads, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct StageTimes {
    /// Decoding the source into the store (wall time).
    pub decode: f64,
    /// The model's passes (wall time; 0 without a model), setup included.
    pub neural: f64,
    /// Of which setting the model up before its first tile: opening the GPU, compiling its
    /// shaders and uploading the weights (near zero on the CPU).
    pub neural_setup: f64,
    /// Of which running the network, on the CPU, or on the GPU as the pass sees it: recording
    /// a tile and waiting for the device (which computes one tile while the next is prepared).
    /// The rest: setup, reading the input windows, placing the results.
    pub neural_network: f64,
    /// Resampling (all workers).
    pub compute: f64,
    /// Compressing tiles (all workers).
    pub encode: f64,
    /// Writing tiles and metadata (writer thread).
    pub write: f64,
    /// GPU: packing source windows into upload buffers (GPU thread).
    pub gpu_upload: f64,
    /// GPU: waiting for compute and transfers to finish (GPU thread).
    pub gpu_wait: f64,
    /// GPU: copying tiles out of read-back buffers (GPU thread).
    pub gpu_readback: f64,
    /// Choosing the backend and opening the GPU (instance, device, pipelines, buffers) before
    /// the first tile (wall time; near zero on the CPU path).
    pub backend_init: f64,
    /// Tiles computed by the GPU (the rest by the CPU workers).
    pub gpu_tiles: u64,
}

/// A progress event.
#[derive(Debug, Clone, PartialEq)]
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
    /// Tiles written so far.
    Tiles {
        /// Tiles done.
        done: u64,
        /// Total tiles.
        total: u64,
    },
    /// The output is complete and in place.
    Done {
        /// Output file size.
        bytes: u64,
        /// Wall time in seconds.
        seconds: f64,
        /// Per-stage times.
        stages: StageTimes,
    },
}

impl Event {
    /// One JSON object, as printed by `--progress json`.
    ///
    /// ```
    /// let e = gigascale::Event::Decode { rows: 3, total: 10 };
    /// assert_eq!(e.to_json(), r#"{"event":"decode","rows":3,"total":10}"#);
    /// ```
    pub fn to_json(&self) -> String {
        match self {
            Event::Start { input, output, tiles, threads, slots, planned_memory, max_memory } => format!(
                r#"{{"event":"start","input":[{},{}],"output":[{},{}],"tiles":{tiles},"threads":{threads},"slots":{slots},"planned_memory":{planned_memory},"max_memory":{max_memory}}}"#,
                input.0, input.1, output.0, output.1
            ),
            Event::Backend { kind, detail } => {
                format!(r#"{{"event":"backend","kind":"{}","detail":"{}"}}"#, esc(kind), esc(detail))
            }
            Event::Warning { message } => format!(r#"{{"event":"warning","message":"{}"}}"#, esc(message)),
            Event::Resumed { tiles, total } => format!(r#"{{"event":"resumed","tiles":{tiles},"total":{total}}}"#),
            Event::Decode { rows, total } => format!(r#"{{"event":"decode","rows":{rows},"total":{total}}}"#),
            Event::Tiles { done, total } => format!(r#"{{"event":"tiles","done":{done},"total":{total}}}"#),
            Event::NeuralStart { model, pass, passes, input, output, tile, tiles, planned_memory, device } => format!(
                r#"{{"event":"neural_start","model":"{}","pass":{pass},"passes":{passes},"input":[{},{}],"output":[{},{}],"tile":{tile},"tiles":{tiles},"planned_memory":{planned_memory},"device":"{}"}}"#,
                esc(model),
                input.0,
                input.1,
                output.0,
                output.1,
                esc(device)
            ),
            Event::Neural { pass, passes, done, total } => {
                format!(r#"{{"event":"neural","pass":{pass},"passes":{passes},"done":{done},"total":{total}}}"#)
            }
            Event::Done { bytes, seconds, stages } => format!(
                r#"{{"event":"done","bytes":{bytes},"seconds":{seconds:.3},"decode_s":{:.3},"neural_s":{:.3},"neural_setup_s":{:.3},"neural_network_s":{:.3},"compute_s":{:.3},"encode_s":{:.3},"write_s":{:.3},"gpu_upload_s":{:.3},"gpu_wait_s":{:.3},"gpu_readback_s":{:.3},"backend_init_s":{:.3},"gpu_tiles":{}}}"#,
                stages.decode,
                stages.neural,
                stages.neural_setup,
                stages.neural_network,
                stages.compute,
                stages.encode,
                stages.write,
                stages.gpu_upload,
                stages.gpu_wait,
                stages.gpu_readback,
                stages.backend_init,
                stages.gpu_tiles
            ),
        }
    }
}

fn esc(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            c if (c as u32) < 0x20 => vec![' '],
            c => vec![c],
        })
        .collect()
}
