//! The face restorer: the user's ONNX export of CodeFormer or GFPGAN, run by ONNX Runtime
//! (the `onnx` feature: the `ort` crate, the runtime library loaded at run time).
//!
//! The model takes one 1x3x512x512 float image in [-1, 1] (RGB, planar) and gives one back;
//! CodeFormer's exports take a second input, the fidelity weight `w` (one float or double).
//! Each session runs its operators on a fixed number of threads (`--face-threads`, default
//! 1): ONNX Runtime's sums change order with its thread count, and a face must be the same
//! bytes for every `--threads`. Faces are restored in parallel instead, one session per worker.

use super::align::FACE_EDGE;
use super::FaceDevice;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Where ONNX Runtime's library is found, in the order tried.
pub const RUNTIME_HELP: &str = "gigascale loads ONNX Runtime's library at run time: give its path with \
     --onnxruntime PATH or GIGASCALE_ONNXRUNTIME=PATH (libonnxruntime.so.*, as the `onnxruntime` \
     Python wheel ships it in onnxruntime/capi/), or `pip install onnxruntime` for the python3 on \
     PATH, where gigascale looks for it";

/// The model's input and output names, as its graph declares them.
#[derive(Debug, Clone)]
struct Signature {
    image: String,
    weight: Option<(String, bool)>,
    output: String,
}

/// A loaded restorer: sessions of one model, each used by one thread at a time.
pub(super) struct Restorer {
    sessions: Vec<Mutex<ort::session::Session>>,
    signature: Signature,
    /// The model file, for messages.
    path: PathBuf,
    /// ONNX Runtime's intra-op threads per session.
    intra: usize,
    device: FaceDevice,
}

impl Restorer {
    /// Loads `model` into one session on `device` of the runtime at `runtime` (or found as
    /// [`RUNTIME_HELP`] says; [`Restorer::grow`] opens more). `FaceDevice::Auto` becomes the
    /// first CUDA GPU if a session opens there, else the CPU.
    pub(super) fn load(model: &Path, runtime: Option<&Path>, intra: usize, device: FaceDevice) -> Result<Restorer> {
        environment(runtime)?;
        let (first, device) = match device {
            FaceDevice::Auto => match session(model, intra, Some(0)) {
                Ok(s) => (s, FaceDevice::Cuda(0)),
                Err(_) => (session(model, intra, None)?, FaceDevice::Cpu),
            },
            FaceDevice::Cuda(id) => (session(model, intra, Some(id))?, device),
            FaceDevice::Cpu => (session(model, intra, None)?, device),
        };
        let signature = signature(model, &first)?;
        Ok(Restorer { sessions: vec![Mutex::new(first)], signature, path: model.to_path_buf(), intra, device })
    }

    /// Opens more sessions of the model, up to `total`.
    pub(super) fn grow(&mut self, total: usize) -> Result<()> {
        while self.sessions.len() < total {
            let gpu = match self.device {
                FaceDevice::Cuda(id) => Some(id),
                _ => None,
            };
            self.sessions.push(Mutex::new(session(&self.path, self.intra, gpu)?));
        }
        Ok(())
    }

    /// Where the sessions run.
    pub(super) fn device(&self) -> FaceDevice {
        self.device
    }

    /// Sessions open.
    pub(super) fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Restores one aligned crop (interleaved 8-bit RGB, 512x512) on session `worker`,
    /// with fidelity `w` where the model takes one; returns the face as facexlib's
    /// `tensor2img` does: clamped to [-1, 1], `round((y + 1) / 2 · 255)`, interleaved RGB.
    pub(super) fn restore(&self, worker: usize, crop: &[u8], w: f32) -> Result<Vec<u8>> {
        let plane = FACE_EDGE * FACE_EDGE;
        let mut input = vec![0f32; 3 * plane];
        for (i, px) in crop.chunks_exact(3).enumerate() {
            for k in 0..3 {
                input[k * plane + i] = (px[k] as f32 / 255.0 - 0.5) / 0.5;
            }
        }
        let shape = [1i64, 3, FACE_EDGE as i64, FACE_EDGE as i64];
        let failed = |e: ort::Error| Error::Format {
            path: self.path.clone(),
            message: format!("the face restorer failed: {e}"),
        };
        let image = ort::value::Tensor::from_array((shape, input)).map_err(failed)?;
        let mut session = self.sessions[worker % self.sessions.len()].lock().map_err(|_| poisoned())?;
        let sig = &self.signature;
        let outputs = match &sig.weight {
            None => session.run(ort::inputs![sig.image.as_str() => image]).map_err(failed)?,
            Some((name, double)) => {
                let weight: ort::session::SessionInputValue<'_> = if *double {
                    ort::value::Tensor::from_array(([1i64], vec![w as f64])).map_err(failed)?.into()
                } else {
                    ort::value::Tensor::from_array(([1i64], vec![w])).map_err(failed)?.into()
                };
                session.run(ort::inputs![sig.image.as_str() => image, name.as_str() => weight]).map_err(failed)?
            }
        };
        let (shape, data) = outputs[sig.output.as_str()].try_extract_tensor::<f32>().map_err(failed)?;
        if data.len() != 3 * plane {
            return Err(Error::Format {
                path: self.path.clone(),
                message: format!("the face restorer gave a {shape:?} tensor, not 1x3x512x512"),
            });
        }
        let mut face = vec![0u8; 3 * plane];
        for (i, px) in face.chunks_exact_mut(3).enumerate() {
            for k in 0..3 {
                let y = data[k * plane + i].clamp(-1.0, 1.0);
                px[k] = ((y + 1.0) / 2.0 * 255.0).round() as u8;
            }
        }
        Ok(face)
    }
}

/// One session of `model` on CUDA GPU `gpu` (else the CPU): `intra` threads for its
/// operators on the CPU, one for its graph.
fn session(model: &Path, intra: usize, gpu: Option<u32>) -> Result<ort::session::Session> {
    let env = environment(None)?;
    let bad = |e: ort::Error| Error::Format {
        path: model.to_path_buf(),
        message: format!("ONNX Runtime cannot load it as a face restorer: {e}"),
    };
    let cpu = ort::ep::CPU::default().with_arena_allocator(false).build();
    let providers = match gpu {
        None => vec![cpu],
        Some(id) => vec![cuda(id), cpu],
    };
    let builder = ort::session::Session::builder(env)
        .map_err(bad)?
        .with_intra_threads(intra)
        .map_err(|e| bad(e.into()))?
        .with_inter_threads(1)
        .map_err(|e| bad(e.into()))?;
    let builder = builder.with_execution_providers(providers).map_err(|e| match gpu {
        None => bad(e.into()),
        Some(id) => {
            Error::usage(format!("--face-device cuda:{id}: {}. {CUDA_HELP}", e.to_string().trim_end_matches('.')))
        }
    })?;
    builder.with_memory_pattern(false).map_err(|e| bad(e.into()))?.commit_from_file(model).map_err(bad)
}

/// What `--face-device cuda` needs.
const CUDA_HELP: &str = "The CUDA device needs ONNX Runtime's GPU build (the `onnxruntime-gpu` wheel: give its \
     onnxruntime/capi/libonnxruntime.so.* with --onnxruntime, libonnxruntime_providers_cuda.so beside it) and \
     the CUDA and cuDNN libraries that build was made for, where the system's loader finds them";

/// ONNX Runtime's CUDA provider on GPU `id`, chosen so that a face is the same bytes on every
/// run: cuDNN's heuristic choice of convolution algorithm (the default, exhaustive search,
/// times the candidates and may choose differently from run to run), no TF32, memory taken
/// as asked rather than in powers of two. A failure is an error, never a silent fall back
/// to the CPU (which gives other bytes).
fn cuda(id: u32) -> ort::ep::ExecutionProviderDispatch {
    use ort::ep::{cuda::ConvAlgorithmSearch, ArenaExtendStrategy, CUDA};
    CUDA::default()
        .with_device_id(id as i32)
        .with_conv_algorithm_search(ConvAlgorithmSearch::Heuristic)
        .with_tf32(false)
        .with_arena_extend_strategy(ArenaExtendStrategy::SameAsRequested)
        .build()
        .error_on_failure()
}

fn poisoned() -> Error {
    Error::Internal("a face restorer session was poisoned by a panic".into())
}

/// The process's ONNX Runtime environment, loaded once from the first library found.
fn environment(runtime: Option<&Path>) -> Result<&'static ort::environment::Environment> {
    static ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> = OnceLock::new();
    if let Some(Ok(env)) = ENV.get() {
        return Ok(env);
    }
    let lib = find_runtime(runtime)?;
    let env = ENV.get_or_init(|| {
        let built = ort::init_from(&lib).map_err(|e| e.to_string())?;
        built.with_name("gigascale").build().map_err(|e| e.to_string())
    });
    env.as_ref().map_err(|e| Error::usage(format!("ONNX Runtime from {}: {e}. {RUNTIME_HELP}", lib.display())))
}

/// The runtime library: the option, then `GIGASCALE_ONNXRUNTIME`, then `ORT_DYLIB_PATH`, then
/// the `onnxruntime` wheel of the `python3` on PATH.
pub(super) fn find_runtime(option: Option<&Path>) -> Result<PathBuf> {
    let given = option
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("GIGASCALE_ONNXRUNTIME").map(PathBuf::from))
        .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from));
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::usage(format!("ONNX Runtime library {}: no such file. {RUNTIME_HELP}", p.display())))
        };
    }
    from_python_wheel()
        .ok_or_else(|| Error::usage(format!("--faces needs ONNX Runtime, which was not found. {RUNTIME_HELP}")))
}

/// `libonnxruntime.so*` in the `capi` folder of the `onnxruntime` package of `python3`.
fn from_python_wheel() -> Option<PathBuf> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim()).join("capi");
    let mut libs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so")))
        .collect();
    libs.sort();
    libs.into_iter().last()
}

/// The graph's image input (the 4-D float one), its fidelity input if any, and its first
/// output.
fn signature(model: &Path, session: &ort::session::Session) -> Result<Signature> {
    use ort::value::TensorElementType as T;
    let bad = |m: String| Error::Format { path: model.to_path_buf(), message: m };
    let (mut image, mut weight) = (None, None);
    for input in session.inputs() {
        let ty = input.dtype().tensor_type();
        let rank = input.dtype().tensor_shape().map_or(0, |s| s.len());
        match (ty, rank) {
            (Some(T::Float32), 4) if image.is_none() => image = Some(input.name().to_string()),
            (Some(T::Float32 | T::Float64), 0 | 1) if weight.is_none() => {
                weight = Some((input.name().to_string(), ty == Some(T::Float64)))
            }
            _ => return Err(bad(format!("input {:?} is not an image or a fidelity weight", input.name()))),
        }
    }
    let image = image.ok_or_else(|| bad("no 1x3x512x512 float image input: not a face restorer".into()))?;
    let output = session.outputs().first().ok_or_else(|| bad("the graph has no output".into()))?.name().to_string();
    Ok(Signature { image, weight, output })
}
