// Finishing a pixel for the exact passes 2 (vpass.wgsl, horizontal_last.wgsl; each defines
// `acc2(j, i, c)`, the channel's pass-2 accumulator): rounds, unpremultiplies and clamps.

fn clamp_max(v: i64) -> u32 {
    return u32(max(min(v, i64(p.max_value)), i64(0)));
}

fn value(j: u32, i: u32, c: u32) -> u32 {
    if (p.alpha == 1u) {
        let aa = acc2(j, i, p.ch - 1u);
        let ao = clamp_max(round_shift(aa, p.k2_plain));
        if (c + 1u == p.ch) {
            return ao;
        }
        let ac = acc2(j, i, c);
        if (ao == 0u || ac <= i64(0)) {
            return 0u;
        }
        let n = ac << p.n_shift;
        let d = aa >> p.d_shift;
        return clamp_max((2 * n + d) / (2 * d));
    }
    return clamp_max(round_shift(acc2(j, i, c), p.k2_plain));
}
