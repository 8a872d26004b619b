// The body of dots.wgsl and dots_vec4.wgsl: parameters, partial sums, lane sums and the
// entry point. The includer binds R (1) and x (2) in its own view (f32s or vec4s) and defines
//   fn lane_dot(i, v, first, last, lane) -> f32
// this lane's part of Σ_{t ∈ [first, last)} R[i][t]·x_v[t] (its coordinates LANES apart).

struct Params {
    rows: u32,         // rows of R in this launch
    d: u32,
    vectors: u32,      // k
    chunk_len: u32,
    chunks: u32,
    row_blocks: u32,   // ceil(rows / 8)
    row0: u32,         // index of this launch's first row among all rows
    all_rows: u32,     // rows of the partial sums
    r_offset: u32,
    x_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

const LANES: u32 = 32u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;

var<workgroup> lane_sums: array<f32, 256>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = workgroup_index(wid, nwg);
    if group >= p.row_blocks * p.chunks {
        return;
    }
    let chunk = group / p.row_blocks;
    let i = (group % p.row_blocks) * 8u + lid / LANES;
    let lane = lid % LANES;
    let first = chunk * p.chunk_len;
    let last = min(p.d, first + p.chunk_len);
    for (var v = 0u; v < p.vectors; v++) {
        var acc = 0.0;
        if i < p.rows {
            acc = lane_dot(i, v, first, last, lane);
        }
        lane_sums[lid] = acc;
        workgroupBarrier();
        if lane == 0u && i < p.rows {
            var sum = 0.0;
            for (var l = 0u; l < LANES; l++) {
                sum += lane_sums[lid + l];
            }
            partial[(v * p.chunks + chunk) * p.all_rows + p.row0 + i] = sum;
        }
        workgroupBarrier();
    }
}
