// The online softmax's block step, shared by softmax.wgsl and softmax_query_gradient.wgsl.
// Thread layout 32 rows (queries) × LANES lanes: the thread of query i holds the scores of
// keys first + lane + LANES·t (t < 4) of a 32-key block. The includer defines LANES and
// `p.n`, `p.scale`, and calls scaled_block_max in uniform control flow (it holds a barrier).

// −f32 max: the score of a key that does not count. Finite, so that exp(m_old − m_new) is
// never NaN.
const NO_SCORE: f32 = -3.4028235e38;

var<workgroup> lane_max: array<f32, 256>;

// Whether key j counts for query i: j < n, and j ≤ i when causal.
fn key_counts(j: u32, i: u32, causal: bool) -> bool {
    return j < p.n && (!causal || j <= i);
}

// The thread's raw scores q_i·k_j scaled (NO_SCORE for keys that do not count), and the max
// of its row over the block. lane_max is free again after the caller's next barrier.
fn scaled_block_max(score: ptr<function, array<f32, 4>>, first: u32, i: u32, causal: bool, lid: u32) -> f32 {
    let row = lid / LANES;
    let lane = lid % LANES;
    var block_max = NO_SCORE;
    for (var t = 0u; t < 4u; t++) {
        let j = first + lane + LANES * t;
        (*score)[t] = select(NO_SCORE, (*score)[t] * p.scale, key_counts(j, i, causal));
        block_max = max(block_max, (*score)[t]);
    }
    lane_max[lid] = block_max;
    workgroupBarrier();
    for (var other = 0u; other < LANES; other++) {
        block_max = max(block_max, lane_max[row * LANES + other]);
    }
    return block_max;
}
