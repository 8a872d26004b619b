// The layout of the row kernels of the linear attention backward (backward_features.wgsl,
// backward_prepare.wgsl, backward_feature_gradients.wgsl): ROWS rows (head·n + position) ×
// ROW_LANES lanes per workgroup of 256, each lane strided over its row's columns; and the sum
// of per-lane parts over a row. The includer defines ROWS (= 256 / ROW_LANES) and calls
// row_sums in uniform control flow (it holds a barrier).

const ROW_LANES: u32 = 32u;

var<workgroup> row_parts: array<vec2<f32>, 256>;

// The sums over this thread's row of two parts per lane, lane by lane in order.
fn row_sums(lid: u32, parts: vec2<f32>) -> vec2<f32> {
    row_parts[lid] = parts;
    workgroupBarrier();
    let row_first = lid - lid % ROW_LANES;
    var total = vec2<f32>(0.0, 0.0);
    for (var l = 0u; l < ROW_LANES; l++) {
        total += row_parts[row_first + l];
    }
    return total;
}
