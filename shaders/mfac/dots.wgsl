// Dot products of the rows of R ([rows, d]: M-FAC's V, or the sliding window's gradients)
// with k vectors x ([k, d]), in partial sums over chunks of d:
//   partial[v][chunk][row0 + i] = Σ_{t ∈ chunk} R[i][t]·x_v[t]
// coefficients.wgsl adds the chunks. A workgroup covers 8 rows × one chunk; 32 lanes walk a
// row's chunk in coalesced steps, then one lane adds their 32 sums.

// #include "util/workgroup.inc.wgsl"

// #include "mfac/dots_params.inc.wgsl"
@group(0) @binding(1) var<storage, read> r: array<f32>;
fn read_r(i: u32) -> f32 { return r[i]; }
@group(0) @binding(2) var<storage, read> x: array<f32>;

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
            for (var t = first + lane; t < last; t += LANES) {
                acc += read_r(p.r_offset + i * p.d + t) * x[p.x_offset + v * p.d + t];
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
