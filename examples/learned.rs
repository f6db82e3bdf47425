//! Learned upscaling from the library: a built-in model (or an ncnn `.param` file), its passes,
//! then the resampler to the exact size asked for, under a memory budget, with progress.
//!
//!     cargo run --release --example learned -- fixtures/coffee.jpg coffee-x6.tif photo 6
//!
//! (`photo` is x2, so the model runs once and lanczos3 takes its output from x2 to x6.)

use gigascale::{Event, Files, Model, Options, Size};
use std::path::Path;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, model, scale] = &args[..] else {
        return Err("usage: learned IN OUT MODEL|PATH.param SCALE".into());
    };
    let scale: f64 = scale.parse()?;
    let model = Arc::new(Model::open(model, &[])?);
    println!(
        "{}: x{}, halo {} px, {} multiply-adds per input pixel",
        model.name(),
        model.scale(),
        model.halo(),
        model.macs_per_pixel()
    );

    let mut opts = Options::new(Size::Scale { x: scale, y: scale });
    opts.model = Some(model);
    opts.limits.max_memory = 256 << 20;
    let mut files = Files::default();
    files.overwrite = true;
    let report = gigascale::upscale(Path::new(input), Path::new(output), &opts, files, &mut |e| match e {
        Event::NeuralStart { input, output, tiles, device, .. } => {
            println!("model: {}x{} -> {}x{} in {tiles} tiles on {device}", input.0, input.1, output.0, output.1)
        }
        Event::Neural { done, total, .. } if done == total => println!("model done"),
        _ => {}
    })?;
    let (w, h) = report.output;
    println!(
        "{output}: {w}x{h}, {} bytes in {:.2} s (model {:.2} s)",
        report.bytes, report.seconds, report.stages.neural
    );
    Ok(())
}
