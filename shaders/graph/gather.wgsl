// gather: out[e][c] = src[receivers[e]][c], one thread per output element of this block of
// edges (rows first_row .. first_row + rows of the whole output).

// #include "util/workgroup.inc.wgsl"

// #include "graph/rows.inc.wgsl"

@group(0) @binding(2) var<storage, read> receivers: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

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
    let e = p.first_row + t / p.width;
    let c = t % p.width;
    out[p.out_offset + t] = src_at(receivers[e], c);
}
