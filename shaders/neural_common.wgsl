// Shared by the neural engine's shaders: the exact engine's rounding (src/neural/exact.rs),
// in 32-bit integers only.

fn shift_round(a: i32, s: i32) -> i32 {
    if s >= 32 { return 0; }
    if s > 0 { return (a >> u32(s)) + ((a >> u32(s - 1)) & 1); }
    if s == 0 { return a; }
    let lim = 32767 >> u32(min(-s, 15));
    if a > lim { return 32767; }
    if a < -lim { return -32767; }
    return a << u32(-s);
}

fn saturate16(a: i32) -> i32 {
    return clamp(a, -32767, 32767);
}

// The flat index of this invocation over a 2-D grid of 64-wide workgroups.
fn flat(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 64u;
}
