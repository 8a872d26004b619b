// combine.wgsl four coordinates per thread, where R is f32 and every row, x and out are
// 4-aligned (d % 4 = 0, offsets % 4 = 0): R, x and out read and written as vec4s, so that each
// load, and each coefficient read, serves four coordinates.
//   ihvp:              out_v[t..t+4] = x_v[t..t+4]/λ − Σ_i c_v[i]·R[i][t..t+4]
//   inverse diagonal:  out[t..t+4]   = 1/λ − Σ_i R[i][t..t+4]² / D_i

// #include "util/workgroup.inc.wgsl"

// #include "mfac/combine_params.inc.wgsl"

@group(0) @binding(1) var<storage, read> r4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out4: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let index = workgroup_index(wid, nwg) * 256u + lid; // of a vec4
    let quarter = p.d / 4u;
    if index >= p.vectors * quarter {
        return;
    }
    let v = index / quarter;
    let t = index % quarter;
    var acc: vec4<f32>;
    if p.first == 1u {
        if p.diagonal == 1u {
            acc = vec4<f32>(1.0 / p.damp);
        } else {
            acc = x4[p.x_offset / 4u + index] / p.damp;
        }
    } else {
        acc = out4[p.out_offset / 4u + index];
    }
    for (var i = 0u; i < p.rows; i++) {
        let rt = r4[(p.r_offset + i * p.d) / 4u + t];
        if p.diagonal == 1u {
            acc -= rt * rt / coefficients[p.row0 + i];
        } else {
            acc -= coefficients[v * p.all_rows + p.row0 + i] * rt;
        }
    }
    out4[p.out_offset / 4u + index] = acc;
}
