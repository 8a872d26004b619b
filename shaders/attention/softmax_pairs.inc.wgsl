// The pair products and the block handoff of the softmax register forms (softmax_rows.wgsl and
// softmax_*_gradient_rows*.wgsl): each lane computes its two columns 2·lane, 2·lane + 1 of an
// 8 × BLOCK block (8 rows of the workgroup against a BLOCK-row block of the other side), and
// one barrier later every lane reads the block a column at a time. The includer defines BLOCK;
// binds `p` with `n` and `causal`; defines `load(kind, head, row, c) -> f32` (0 past the rows
// and the operand's width) and `load_vec4(kind, head, row, c) -> vec4<f32>` (columns
// c .. c + 3 of a width that is a multiple of 4, 0 past the rows); and declares
// `var<workgroup> handoff: array<vec4<f32>, …>` with room for its blocks (2·BLOCK vec4s each).

// −f32 max: the score of a key that does not count (as online_softmax.inc.wgsl).
const NO_SCORE: f32 = -3.4028235e38;

// The two columns of a lane: rows 0..3 (`low`) and 4..7 (`high`) of columns 0 and 1.
struct PairDots {
    low0: vec4<f32>,
    high0: vec4<f32>,
    low1: vec4<f32>,
    high1: vec4<f32>,
}

// acc plus one step of d: the 8 rows' values (low, high) times the lane's two columns' b0, b1.
fn pair_step(acc: PairDots, low: vec4<f32>, high: vec4<f32>, b0: f32, b1: f32) -> PairDots {
    return PairDots(fma(low, vec4<f32>(b0), acc.low0), fma(high, vec4<f32>(b0), acc.high0),
                    fma(low, vec4<f32>(b1), acc.low1), fma(high, vec4<f32>(b1), acc.high1));
}

// acc plus four steps of d, the rows' values in a0 .. a7 and the two columns' in b0, b1.
// Written out: a loop over the steps would index its vectors at run time.
fn pair_steps4(acc: PairDots, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>,
               a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32>, b0: vec4<f32>,
               b1: vec4<f32>) -> PairDots {
    var s = pair_step(acc, vec4<f32>(a0.x, a1.x, a2.x, a3.x), vec4<f32>(a4.x, a5.x, a6.x, a7.x), b0.x, b1.x);
    s = pair_step(s, vec4<f32>(a0.y, a1.y, a2.y, a3.y), vec4<f32>(a4.y, a5.y, a6.y, a7.y), b0.y, b1.y);
    s = pair_step(s, vec4<f32>(a0.z, a1.z, a2.z, a3.z), vec4<f32>(a4.z, a5.z, a6.z, a7.z), b0.z, b1.z);
    return pair_step(s, vec4<f32>(a0.w, a1.w, a2.w, a3.w), vec4<f32>(a4.w, a5.w, a6.w, a7.w), b0.w, b1.w);
}

// Σ_d A[a_first + r][d]·B[b + t][d] for the 8 rows r of operand `a_kind` and this lane's two
// rows t of `b_kind`, over `width` columns: four columns per load where width allows.
fn pair_dots(a_kind: u32, a_first: u32, b_kind: u32, b: u32, width: u32, head: u32) -> PairDots {
    let z = vec4<f32>(0.0);
    var out = PairDots(z, z, z, z);
    if width % 4u == 0u {
        for (var d = 0u; d < width; d += 4u) {
            out = pair_steps4(out,
                load_vec4(a_kind, head, a_first, d), load_vec4(a_kind, head, a_first + 1u, d),
                load_vec4(a_kind, head, a_first + 2u, d), load_vec4(a_kind, head, a_first + 3u, d),
                load_vec4(a_kind, head, a_first + 4u, d), load_vec4(a_kind, head, a_first + 5u, d),
                load_vec4(a_kind, head, a_first + 6u, d), load_vec4(a_kind, head, a_first + 7u, d),
                load_vec4(b_kind, head, b, d), load_vec4(b_kind, head, b + 1u, d));
        }
    } else {
        for (var d = 0u; d < width; d++) {
            let low = vec4<f32>(load(a_kind, head, a_first, d), load(a_kind, head, a_first + 1u, d),
                                load(a_kind, head, a_first + 2u, d), load(a_kind, head, a_first + 3u, d));
            let high = vec4<f32>(load(a_kind, head, a_first + 4u, d), load(a_kind, head, a_first + 5u, d),
                                 load(a_kind, head, a_first + 6u, d), load(a_kind, head, a_first + 7u, d));
            out = pair_step(out, low, high, load(b_kind, head, b, d), load(b_kind, head, b + 1u, d));
        }
    }
    return out;
}

// Columns c .. c + 3 of row `row` of operand `kind`, `width` wide (0 past the ends): one load
// where the width is a multiple of 4.
fn load4(kind: u32, head: u32, row: u32, c: u32, width: u32) -> vec4<f32> {
    if width % 4u == 0u {
        return select(vec4<f32>(0.0), load_vec4(kind, head, row, min(c, width - 4u)), c < width);
    }
    return vec4<f32>(load(kind, head, row, c), load(kind, head, row, c + 1u),
                     load(kind, head, row, c + 2u), load(kind, head, row, c + 3u));
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
