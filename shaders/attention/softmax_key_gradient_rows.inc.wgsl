// The body of softmax_key_gradient_rows.wgsl and softmax_key_gradient_rows_vec4.wgsl, which
// include it after their input bindings.

// #include "util/workgroup.inc.wgsl"

// #include "attention/softmax_gradient_params.inc.wgsl"

// #include "attention/softmax_gradient_rows.inc.wgsl"

@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;

const WEIGHTS: u32 = 0u;  // P of the block in the handoff
const SLOPES: u32 = 64u;  // ∂S

var<workgroup> handoff: array<vec4<f32>, 128>;

// lse or Δ (`of_delta`) of query i, 0 past the queries.
fn statistic(head: u32, i: u32, of_delta: bool) -> f32 {
    if i >= p.n {
        return 0.0;
    }
    let at = p.lse_offset + head * p.n + i;
    return select(lse[at], delta[at], of_delta);
}

@compute @workgroup_size(LANES)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let group = workgroup_index(wid, nwg);
    if group >= p.total_groups {
        return;
    }
    let blocks = (p.n + ROWS - 1u) / ROWS;
    let ct = group % p.column_groups; // 64-column tiles of ∂k and ∂v
    let block = (group / p.column_groups) % blocks;
    let head = group / (p.column_groups * blocks);
    let j0 = block * ROWS;
    let c = ct * COLUMNS + 4u * lane;
    // Causal: the first query block that reaches this block's first key.
    let first_block = select(0u, j0 / BLOCK, p.causal == 1u);
    let query_blocks = (p.n + BLOCK - 1u) / BLOCK;

    var acc_k = rows8_zero();
    var acc_v = rows8_zero();
    for (var qb = first_block; qb < query_blocks; qb++) {
        let i = qb * BLOCK + 2u * lane;
        let s = pair_dots(1u, j0, 0u, i, p.dk, head);
        let dp = pair_dots(2u, j0, 3u, i, p.dv, head);
        let lse0 = vec4<f32>(statistic(head, i, false));
        let lse1 = vec4<f32>(statistic(head, i + 1u, false));
        let delta0 = vec4<f32>(statistic(head, i, true));
        let delta1 = vec4<f32>(statistic(head, i + 1u, true));
        let weights = PairDots(
            exp(s.low0 * p.scale - lse0),
            exp(s.high0 * p.scale - lse0),
            exp(s.low1 * p.scale - lse1),
            exp(s.high1 * p.scale - lse1),
        );
        let slopes = PairDots(
            weights.low0 * (dp.low0 - delta0),
            weights.high0 * (dp.high0 - delta0),
            weights.low1 * (dp.low1 - delta1),
            weights.high1 * (dp.high1 - delta1),
        );
        let keep = pair_keep(j0, i, false);
        block_store(WEIGHTS, lane, weights, keep);
        block_store(SLOPES, lane, slopes, keep);
        workgroupBarrier();
        for (var k = 0u; k < min(BLOCK, p.n - qb * BLOCK); k++) {
            let query = qb * BLOCK + k;
            let keep_low = causal_keep(j0, query, false);
            let keep_high = causal_keep(j0 + 4u, query, false);
            acc_k = rows8_fma_where(acc_k, block_low(SLOPES, k), block_high(SLOPES, k),
                                    load4(0u, head, query, c, width_of(0u)), 0.0, keep_low, keep_high);
            acc_v = rows8_fma_where(acc_v, block_low(WEIGHTS, k), block_high(WEIGHTS, k),
                                    load4(3u, head, query, c, width_of(3u)), 0.0, keep_low, keep_high);
        }
        workgroupBarrier();
    }

    for (var r = 0u; r < ROWS; r++) {
        let j = j0 + r;
        if j < p.n {
            let ok = rows8_row(acc_k, r);
            let ov = rows8_row(acc_v, r);
            for (var t = 0u; t < 4u; t++) {
                if c + t < p.dk {
                    dk[p.dk_offset + (head * p.n + j) * p.dk + c + t] = ok[t] * p.scale;
                }
                if c + t < p.dv {
                    dv[p.dv_offset + (head * p.n + j) * p.dv + c + t] = ov[t];
                }
            }
        }
    }
}
