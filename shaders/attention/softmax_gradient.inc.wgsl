// Shared by softmax_query_gradient.wgsl and softmax_key_gradient.wgsl, after their
// parameters and inputs (softmax_gradient_params.inc.wgsl): the tile loads and the two block
// products. Thread layout as in softmax.wgsl: 32 rows × 8 lanes, 4 columns per lane
// (lane + 8t); a 32×32 block of scores lives in registers. Each workgroup covers up to
// GROUP_TILES column tiles of its outputs, so that the scores and g·v of a block are computed
// once for all of them.

const TILE: u32 = 32u;
const LANES: u32 = 8u;
const GROUP_TILES: u32 = 4u;

var<workgroup> tile_a: array<f32, 1024>;  // [row][d]
var<workgroup> tile_b: array<f32, 1024>;  // [column][d], then the operand of a weighted sum
var<workgroup> weights: array<f32, 1024>; // [row][column]

// Σ_d A[row][d]·B[col][d] for this thread's row and its columns lane + 8t, A the rows
// `a_first ..` of operand `a_kind` and B the rows `b_first ..` of `b_kind`, over `tiles`
// tiles of the width.
fn block_dot(a_kind: u32, a_first: u32, b_kind: u32, b_first: u32, tiles: u32, head: u32, lid: u32) -> array<f32, 4> {
    let row = lid / LANES;
    let lane = lid % LANES;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var dt = 0u; dt < tiles; dt++) {
        for (var t = 0u; t < 4u; t++) {
            let e = lid + 256u * t;
            let d = dt * TILE + e % TILE;
            tile_a[e] = load(a_kind, head, a_first + e / TILE, d);
            tile_b[e] = load(b_kind, head, b_first + e / TILE, d);
        }
        workgroupBarrier();
        for (var d = 0u; d < TILE; d++) {
            let a = tile_a[row * TILE + d];
            for (var t = 0u; t < 4u; t++) {
                acc[t] += a * tile_b[(lane + LANES * t) * TILE + d];
            }
        }
        workgroupBarrier();
    }
    return acc;
}

// Σ_col weights[row][col]·X[col][c] for this thread's row and columns c = ct·32 + lane + 8t,
// X the rows `first ..` of operand `kind`; only columns keep_first ..= keep_last count, the
// others are dropped, not multiplied by 0 (a NaN there must not reach this row). The caller
// has written `weights` (and calls this in uniform control flow: it holds barriers).
fn weighted_tile(kind: u32, first: u32, ct: u32, head: u32, lid: u32, keep_first: u32, keep_last: u32) -> array<f32, 4> {
    let row = lid / LANES;
    let lane = lid % LANES;
    for (var t = 0u; t < 4u; t++) {
        let e = lid + 256u * t;
        tile_b[e] = load(kind, head, first + e / TILE, ct * TILE + e % TILE);
    }
    workgroupBarrier();
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var col = keep_first; col <= keep_last; col++) {
        let w = weights[row * TILE + col];
        for (var t = 0u; t < 4u; t++) {
            acc[t] += w * tile_b[col * TILE + lane + LANES * t];
        }
    }
    workgroupBarrier();
    return acc;
}
