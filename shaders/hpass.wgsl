// Pass 1 (horizontal), exact: stores the integer intermediate.

@group(0) @binding(3) var<storage, read_write> inter: array<i32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = flat_index(gid);
    if (idx < horizontal_count()) {
        inter[idx] = horizontal(idx);
    }
}
