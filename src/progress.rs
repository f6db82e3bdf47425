//! Progress events, delivered to a callback on the calling thread.

/// Time spent per stage, summed over threads, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// Decoding the source into the store (wall time).
    pub decode: f64,
    /// Resampling (all workers).
    pub compute: f64,
    /// Compressing tiles (all workers).
    pub encode: f64,
    /// Writing tiles and metadata (writer thread).
    pub write: f64,
}

/// A progress event.
#[derive(Debug, Clone, PartialEq)]
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
    },
    /// Source rows decoded so far.
    Decode {
        /// Rows done.
        rows: u64,
        /// Total rows.
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
            Event::Start { input, output, tiles, threads, slots, planned_memory } => format!(
                r#"{{"event":"start","input":[{},{}],"output":[{},{}],"tiles":{tiles},"threads":{threads},"slots":{slots},"planned_memory":{planned_memory}}}"#,
                input.0, input.1, output.0, output.1
            ),
            Event::Decode { rows, total } => format!(r#"{{"event":"decode","rows":{rows},"total":{total}}}"#),
            Event::Tiles { done, total } => format!(r#"{{"event":"tiles","done":{done},"total":{total}}}"#),
            Event::Done { bytes, seconds, stages } => format!(
                r#"{{"event":"done","bytes":{bytes},"seconds":{seconds:.3},"decode_s":{:.3},"compute_s":{:.3},"encode_s":{:.3},"write_s":{:.3}}}"#,
                stages.decode, stages.compute, stages.encode, stages.write
            ),
        }
    }
}
