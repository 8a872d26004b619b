// scatter_sum: out[v][c] = Σ src[e][c] over the edges e of node v in increasing e
// (order[offsets[v] .. offsets[v+1]], sorted once by graph::Index), one thread per output
// element of this block of nodes: a fixed order, so the same bits on every run.

// #include "util/workgroup.inc.wgsl"

// #include "graph/rows.inc.wgsl"

@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = workgroup_index(wid, nwg) * 256u + lid;
    if t >= p.rows * p.width {
        return;
    }
    let v = p.first_row + t / p.width;
    let c = t % p.width;
    var sum = 0.0;
    for (var k = offsets[v]; k < offsets[v + 1u]; k++) {
        sum += src_at(order[k], c);
    }
    out[p.out_offset + t] = sum;
}
