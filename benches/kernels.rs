//! Kernel throughput: one 256x256 output tile per iteration, for each filter, at the 15x
//! upscale and a 0.3x downscale, 8-bit RGB and 16-bit RGBA.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gigascale::resample::{resample_tile, Rows, Scratch};
use gigascale::{Channels, Depth, Filter, Layout, Plan};

struct Mem {
    rows: Vec<Vec<u8>>,
}
impl Rows for Mem {
    fn row(&self, y: u32) -> &[u8] {
        &self.rows[y as usize]
    }
}

fn source(w: u32, h: u32, bpp: usize) -> Mem {
    let mut rng = gigascale::digest::Lcg(1);
    Mem { rows: (0..h).map(|_| rng.bytes(w as usize * bpp)).collect() }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("tile256");
    for (name, layout) in
        [("rgb8", Layout::new(Channels::Rgb, Depth::U8)), ("rgba16", Layout::new(Channels::Rgba, Depth::U16))]
    {
        for (factor, (iw, ih)) in [(15.0f64, (200u32, 200u32)), (0.3, (2000, 2000))] {
            let (ow, oh) = ((iw as f64 * factor) as u32, (ih as f64 * factor) as u32);
            let src = source(iw, ih, layout.bytes_per_pixel());
            for f in Filter::ALL {
                let plan = Plan::new(iw, ih, ow, oh, f, layout, 256).unwrap();
                let job = plan.tile(plan.tiles_across() as u64 + 1);
                let mut scratch = Scratch::default();
                let mut out = vec![0u8; plan.tile_bytes()];
                g.throughput(Throughput::Elements(job.out.area()));
                g.bench_with_input(BenchmarkId::new(format!("{name}/x{factor}"), f.name()), &f, |b, _| {
                    b.iter(|| resample_tile(&plan, &src, &job, &mut scratch, &mut out))
                });
            }
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
