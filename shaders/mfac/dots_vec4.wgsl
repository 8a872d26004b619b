// dots.wgsl four coordinates per load, where R is f32 and its rows, x and the chunks are
// 4-aligned (d % 4 = 0, offsets % 4 = 0, chunk_len % 128 = 0): R and x read as vec4s.
//   partial[v][chunk][row0 + i] = Σ_{t ∈ chunk} R[i][t]·x_v[t]

// #include "util/workgroup.inc.wgsl"

// #include "mfac/dots_params.inc.wgsl"
@group(0) @binding(1) var<storage, read> r4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x4: array<vec4<f32>>;

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
            let r_row = (p.r_offset + i * p.d) / 4u;
            let x_row = (p.x_offset + v * p.d) / 4u;
            for (var t = first / 4u + lane; t < last / 4u; t += LANES) {
                acc += dot(r4[r_row + t], x4[x_row + t]);
            }
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
