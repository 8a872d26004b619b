// Combines the per-split states of linear_state.wgsl along the sequence, in place, one
// thread per state entry: causal calls get the exclusive prefix (split c then holds the state
// of every key before chunk c), non-causal calls the total (written to split 0).

// #include "util/workgroup.inc.wgsl"

struct Params {
    heads: u32,
    splits: u32,
    width: u32,   // features · (dv + 1)
    causal: u32,
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
    for (var split = 0u; split < p.splits; split++) {
        let i = first + split * p.width;
        let x = state[i];
        if p.causal == 1u {
            state[i] = running;
        }
        running += x;
    }
    if p.causal == 0u {
        state[first] = running;
    }
}
