//! Tile invariance: the output does not depend on the tile size or on the memory budget
//! (from the smallest plan that fits up to 1G).
use crate::util::*;
use gigascale::{Depth, Error, Filter, Intermediate, Layout};
use proptest::prelude::*;

fn smallest_budget(img: &Img, o: &gigascale::Options) -> u64 {
    let mut probe = o.clone();
    probe.limits.max_memory = 1 << 20;
    match run_mem(img, &probe) {
        Ok(_) => 1 << 20,
        Err(Error::Limit { needed, .. }) => needed,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    #[test]
    fn output_is_independent_of_tile_and_budget(
        w in 1u32..40, h in 1u32..40,
        sx in prop_oneof![Just(15.0f64), Just(3.7), Just(1.5), Just(0.3), 0.2f64..12.0],
        sy in prop_oneof![Just(15.0f64), Just(0.3), 0.2f64..12.0],
        fi in 0usize..5, ci in 0usize..4, deep in any::<bool>(), rounded in any::<bool>(), seed in any::<u64>(),
    ) {
        let layout = Layout::new(LAYOUTS[ci], if deep { Depth::U16 } else { Depth::U8 });
        let img = random_img(&mut Rng(seed), w, h, layout);
        let f = Filter::ALL[fi];
        let mode = if rounded { Intermediate::Rounded } else { Intermediate::Exact };
        let mut base = opts_scale(sx, sy, f);
        base.intermediate = mode;
        base.limits.max_memory = 1 << 30;
        let want = run_mem(&img, &base).unwrap();
        for tile in [16u32, 64, 256, 1024] {
            let mut o = opts_scale(sx, sy, f);
            o.intermediate = mode;
            o.tile = tile;
            let min = smallest_budget(&img, &o);
            for budget in [min, 1 << 30] {
                o.limits.max_memory = budget;
                o.threads = if budget == min { 1 } else { 3 };
                let got = run_mem(&img, &o).unwrap();
                prop_assert_eq!((got.w, got.h), (want.w, want.h));
                prop_assert!(got.data == want.data, "tile {} budget {} differs", tile, budget);
            }
        }
    }
}

#[test]
fn budget_too_small_states_the_minimum() {
    let img = random_img(&mut Rng(1), 64, 64, Layout::new(gigascale::Channels::Rgb, Depth::U8));
    let mut o = opts_scale(4.0, 4.0, Filter::Lanczos3);
    o.tile = 1024;
    o.limits.max_memory = 1 << 20;
    match run_mem(&img, &o) {
        Err(e @ Error::Limit { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("--max-memory") && msg.contains("smallest plan needs"), "{msg}");
        }
        other => panic!("expected a limit error, got {:?}", other.map(|i| (i.w, i.h))),
    }
}
