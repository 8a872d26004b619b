// The FFT grid of so3/fft.inc.wgsl in workgroup memory (at most FFT_CAPACITY entries).

var<workgroup> spectrum: array<vec2<f32>, FFT_CAPACITY>;

fn spectrum_at(i: u32) -> vec2<f32> { return spectrum[i]; }
fn set_spectrum(i: u32, v: vec2<f32>) { spectrum[i] = v; }
fn spectrum_barrier() { workgroupBarrier(); }
