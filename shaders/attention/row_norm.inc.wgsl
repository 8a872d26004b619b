// The norm of the query row each thread works on, for kernels laid out as ROWS rows ×
// ROW_LANES lanes (row_lanes.inc.wgsl): each lane folds q_f for f = lane, lane + 32, …, then
// every thread combines its row's 32 parts. The including shader defines `read_q` and `p.dk`,
// includes features.inc.wgsl and row_lanes.inc.wgsl, and calls it in uniform control flow
// (it holds a barrier).

var<workgroup> part_largest: array<f32, 256>;
var<workgroup> part_ssq: array<f32, 256>;

// ‖q‖ of the row starting at element `first` of q (`valid` false for padding rows).
fn row_query_norm(valid: bool, first: u32, lid: u32) -> QueryNorm {
    var acc = vec2<f32>(0.0, 0.0);
    if valid {
        for (var f = lid % ROW_LANES; f < p.dk; f += ROW_LANES) {
            let one = ssq_of(abs(read_q(first + f)));
            acc = combine_ssq(acc.x, acc.y, one.x, one.y);
        }
    }
    part_largest[lid] = acc.x;
    part_ssq[lid] = acc.y;
    workgroupBarrier();
    let row_first = lid - lid % ROW_LANES;
    var total = vec2<f32>(0.0, 0.0);
    for (var l = 0u; l < ROW_LANES; l++) {
        total = combine_ssq(total.x, total.y, part_largest[row_first + l], part_ssq[row_first + l]);
    }
    return query_norm(total);
}
