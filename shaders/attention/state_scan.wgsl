// Combines the per-split states of linear_state.wgsl or chunk_state.wgsl along the
// sequence, in place, one thread per state entry: mode 1 (causal) gives the exclusive
// prefix (split c then holds the state of every key before chunk c), mode 2 (anti-causal,
// the backward's key side) the exclusive suffix (every key after chunk c), mode 0 the total
// (written to split 0).

// #include "util/workgroup.inc.wgsl"

struct Params {
    heads: u32,
    splits: u32,
    width: u32,   // entries of one state
    mode: u32,    // 0: total, 1: exclusive prefix, 2: exclusive suffix
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> state: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let index = workgroup_index(wid, nwg) * 256u + lid;
    if index >= p.heads * p.width {
        return;
    }
    let head = index / p.width;
    let first = head * p.splits * p.width + index % p.width;
    var running = 0.0;
    for (var s = 0u; s < p.splits; s++) {
        let split = select(s, p.splits - 1u - s, p.mode == 2u);
        let i = first + split * p.width;
        let x = state[i];
        if p.mode != 0u {
            state[i] = running;
        }
        running += x;
    }
    if p.mode == 0u {
        state[first] = running;
    }
}
