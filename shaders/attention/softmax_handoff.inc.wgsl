// The block handoff of the softmax register forms (softmax_rows.wgsl and
// softmax_*_gradient_rows.wgsl): each lane computes its two columns 2·lane, 2·lane + 1 of an
// 8 × BLOCK block (8 rows of the workgroup against a BLOCK-row block of the other side), and
// one barrier later every lane reads the block a column at a time. The includer defines BLOCK,
// binds `p` with `n` and `causal`, and declares `var<workgroup> handoff: array<vec4<f32>, …>`
// with room for its blocks (2·BLOCK vec4s each).

// −f32 max: the score of a key that does not count (as online_softmax.inc.wgsl).
const NO_SCORE: f32 = -3.4028235e38;

// The two columns of a lane: rows 0..3 (`low`) and 4..7 (`high`) of columns 0 and 1.
struct PairDots {
    low0: vec4<f32>,
    high0: vec4<f32>,
    low1: vec4<f32>,
    high1: vec4<f32>,
}

// Blocks lie in `handoff` (vec4s) from offset `at`, a column per two vec4s: column k's rows
// 0..3 at at + 2k, rows 4..7 at at + 2k + 1, so that a lane reads a column in two loads.

// Column k of the block at `at`: rows 0..3 and 4..7.
fn block_low(at: u32, k: u32) -> vec4<f32> {
    return handoff[at + 2u * k];
}
fn block_high(at: u32, k: u32) -> vec4<f32> {
    return handoff[at + 2u * k + 1u];
}

// Writes this lane's columns 2·lane (`d.low0`, `d.high0`) and 2·lane + 1 (`d.low1`,
// `d.high1`) of the block at `at`, dropping (0, not the value times 0) the entries not kept.
fn block_store(at: u32, lane: u32, d: PairDots, keep: PairKeep) {
    let z = vec4<f32>(0.0);
    handoff[at + 4u * lane] = select(z, d.low0, keep.low0);
    handoff[at + 4u * lane + 1u] = select(z, d.high0, keep.high0);
    handoff[at + 4u * lane + 2u] = select(z, d.low1, keep.low1);
    handoff[at + 4u * lane + 3u] = select(z, d.high1, keep.high1);
}

// Which of a PairDots' entries count.
struct PairKeep {
    low0: vec4<bool>,
    high0: vec4<bool>,
    low1: vec4<bool>,
    high1: vec4<bool>,
}

fn keep_all() -> PairKeep {
    let t = vec4<bool>(true);
    return PairKeep(t, t, t, t);
}

// For rows first .. first + 3 and the other side's row o: whether the pair counts under the
// causal mask (key ≤ query; the rows are queries, or keys in the key gradient).
fn causal_keep(first: u32, o: u32, rows_are_queries: bool) -> vec4<bool> {
    let rows = vec4<u32>(first) + vec4<u32>(0u, 1u, 2u, 3u);
    let before = select(vec4<u32>(o) >= rows, vec4<u32>(o) <= rows, rows_are_queries);
    return vec4<bool>(p.causal == 0u) | before;
}

// Which entries of a lane's PairDots (rows first .. first + 7 against the other side's rows
// b and b + 1) count: the other side's row below n, and the causal mask.
fn pair_keep(first: u32, b: u32, rows_are_queries: bool) -> PairKeep {
    let in0 = vec4<bool>(b < p.n);
    let in1 = vec4<bool>(b + 1u < p.n);
    return PairKeep(
        in0 & causal_keep(first, b, rows_are_queries),
        in0 & causal_keep(first + 4u, b, rows_are_queries),
        in1 & causal_keep(first, b + 1u, rows_are_queries),
        in1 & causal_keep(first + 4u, b + 1u, rows_are_queries),
    );
}
