// A batch of unnormalised 2D FFTs, one [n_u, n_v] complex grid per workgroup — the transform
// inside gaunt_fourier.wgsl, on its own so that tests can hold it against rustfft. Forward
// transforms read natural order and store from digit-reversed order; inverse transforms
// the other way round (see so3/fft.inc.wgsl).

// #include "so3/fft.inc.wgsl"

// #include "so3/spectrum_workgroup.inc.wgsl"

// #include "util/workgroup.inc.wgsl"

struct Params {
    grids: u32,
    inverse: u32,
    input_offset: u32,  // in f32s
    output_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
fn read_input(i: u32) -> f32 { return input[i]; }
@group(0) @binding(2) var<storage, read> twiddles: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> positions: array<u32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let grid = workgroup_index(wid, nwg);
    if grid >= p.grids {
        return;
    }
    let inverse = p.inverse == 1u;
    let size = FFT_U * FFT_V;
    for (var e = lid; e < size; e += FFT_WORKGROUP) {
        let at = p.input_offset + 2u * (grid * size + e);
        let reversed = fft_position(e / FFT_V, e % FFT_V);
        set_spectrum(select(e, reversed, inverse), vec2<f32>(read_input(at), read_input(at + 1u)));
    }
    workgroupBarrier();
    if inverse {
        inverse_fft2(lid);
    } else {
        forward_fft2(lid);
    }
    for (var e = lid; e < size; e += FFT_WORKGROUP) {
        let reversed = fft_position(e / FFT_V, e % FFT_V);
        let x = spectrum_at(select(reversed, e, inverse));
        let at = p.output_offset + 2u * (grid * size + e);
        output[at] = x.x;
        output[at + 1u] = x.y;
    }
}
