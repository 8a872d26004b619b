// The body of the two state kernels, linear_state.wgsl (the forward: y = φ_k(k), w = v, the
// extra column 1 for z) and chunk_state.wgsl (the chunked products of the backward: y and w
// as stored): one 32×32 tile of
//   S[d][c] = Σ_{j ∈ [first, last)} y_j[d] · w_j[c],   d = it·32 + row, c = ct·32 + lane + 8t,
// and beside it the extra column Σ_j y_j[d] · w_extra_j, walking the rows 32 at a time
// through workgroup memory. The including file defines TILE, LANES and the loaders
//   fn load_y(head, j, d) -> f32     fn load_w(head, j, c) -> f32     fn load_w_extra(head, j) -> f32
// (called only for j < last and d, c inside `widths` = (inner, columns)), binds the output
// `state`, and calls state_tile in uniform control flow: it has barriers.

var<workgroup> y_tile: array<f32, 1024>; // [row][inner]
var<workgroup> w_tile: array<f32, 1024>; // [row][column]
var<workgroup> w_extra: array<f32, 32>;  // [row]

struct StateTile {
    s: array<f32, 4>, // S[d][c] for this thread's four columns
    extra: f32,       // Σ_j y_j[d] · w_extra_j (0 unless `extra`)
}

fn state_tile(
    head: u32, first: u32, last: u32, it: u32, ct: u32, widths: vec2<u32>, extra: bool,
    lid: u32,
) -> StateTile {
    let row = lid / LANES;
    let lane = lid % LANES;
    var tile = StateTile(array<f32, 4>(0.0, 0.0, 0.0, 0.0), 0.0);
    for (var block = first; block < last; block += TILE) {
        for (var t = 0u; t < 4u; t++) {
            let e = lid + 256u * t;
            let j = block + e / TILE;
            let d = it * TILE + e % TILE;
            let c = ct * TILE + e % TILE;
            var a = 0.0;
            if j < last && d < widths.x {
                a = load_y(head, j, d);
            }
            y_tile[e] = a;
            var b = 0.0;
            if j < last && c < widths.y {
                b = load_w(head, j, c);
            }
            w_tile[e] = b;
        }
        if extra && lid < TILE {
            let j = block + lid;
            var b = 0.0;
            if j < last {
                b = load_w_extra(head, j);
            }
            w_extra[lid] = b;
        }
        workgroupBarrier();
        for (var key = 0u; key < TILE; key++) {
            let a = y_tile[key * TILE + row];
            for (var t = 0u; t < 4u; t++) {
                tile.s[t] += a * w_tile[key * TILE + lane + LANES * t];
            }
            if extra {
                tile.extra += a * w_extra[key];
            }
        }
        workgroupBarrier();
    }
    return tile;
}

// Stores this thread's part of `tile` in the state row that starts at `base` (d's): columns
// c = ct·32 + lane + 8t below `columns`, and with `extra` the extra column, at `columns`,
// from lane 0 of column tile 0.
fn store_state_row(base: u32, tile: StateTile, ct: u32, columns: u32, extra: bool, lid: u32) {
    let lane = lid % LANES;
    for (var t = 0u; t < 4u; t++) {
        let c = ct * TILE + lane + LANES * t;
        if c < columns {
            state[base + c] = tile.s[t];
        }
    }
    if extra && ct == 0u && lane == 0u {
        state[base + columns] = tile.extra;
    }
}
