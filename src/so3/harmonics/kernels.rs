//! GPU launches of the harmonics and their backward: one thread per vector, the recursion's
//! table uploaded once per device and degree.

use std::sync::Arc;

use super::reference::recursion_table;
use super::unrolled;
use crate::gpu::pool::PooledBuffer;
use crate::gpu::{shader, GpuDevice, Kernel, Operand, Shader};
use crate::op::Gpu;
use crate::so3::degrees::dim;
use crate::{Result, Tensor};

const SPHERICAL_HARMONICS: Shader = shader!("so3/spherical_harmonics.wgsl");
const SH_WORKGROUP: usize = 64;

/// The recursion's terms and step starts on the device: they depend on lmax only, so they
/// are built and uploaded once per device.
fn recursion_buffers(gpu: &GpuDevice, lmax: usize) -> Result<[Arc<PooledBuffer>; 2]> {
    let built = std::cell::OnceCell::new();
    let build = || built.get_or_init(|| recursion_table(lmax));
    Ok([
        gpu.constant(&format!("harmonics/{lmax}/table"), || build().0.clone())?,
        gpu.constant(&format!("harmonics/{lmax}/starts"), || build().1.clone())?,
    ])
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ShParams {
    n: u32,
    lmax: u32,
    dim: u32,
    v_offset: u32,
    out_offset: u32,
    _pad: [u32; 3],
}

/// The forms of the harmonics' forward, chosen per adapter, degree and vector count by the
/// device's tuner: the recursion looping over its table (spherical_harmonics.wgsl), or
/// written out for the degree (spherical_harmonics_unrolled.wgsl, the default).
const FORMS: [&str; 2] = ["loop", "unrolled"];

pub(super) fn spherical_harmonics(
    gpu: &Gpu<'_>,
    vectors: &Tensor,
    lmax: usize,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::spherical_harmonics";
    let _call = crate::call::Call::enter(OP);
    let names = FORMS.map(String::from);
    let class = format!(
        "{OP} lmax {lmax} [{}] {}",
        vectors.shape()[0].max(1).next_power_of_two(),
        vectors.dtype()
    );
    let form = gpu.tuner.choose(&class, &names, "unrolled", |form| {
        launch_form(gpu, form, vectors, lmax, out)?;
        gpu.wait()
    })?;
    launch_form(gpu, &form, vectors, lmax, out)
}

/// [`spherical_harmonics`] in the form named `form`.
fn launch_form(
    gpu: &Gpu<'_>,
    form: &str,
    vectors: &Tensor,
    lmax: usize,
    out: &Tensor,
) -> Result<()> {
    let dtypes = [("vectors", vectors.dtype())];
    let (v, y) = (vectors.rows("vectors", 3), out.rows("output", dim(lmax)));
    let n = vectors.shape()[0];
    match form {
        // The written-out form reads no table and binds none.
        "unrolled" => {
            let kernel = gpu.kernel_for(&unrolled::shader(lmax), &dtypes)?;
            dispatch_forward(gpu, &kernel, [v, y], n, lmax)
        }
        _ => {
            let kernel = gpu.kernel_for(&SPHERICAL_HARMONICS, &dtypes)?;
            let [terms, starts] = recursion_buffers(gpu, lmax)?;
            let tables = [terms.buffer(), starts.buffer()].map(Operand::whole);
            dispatch_forward(gpu, &kernel, [v, tables[0], tables[1], y], n, lmax)
        }
    }
}

/// One forward dispatch per block of `n` vectors, bound `[params, vectors, …, output]`.
fn dispatch_forward<const N: usize>(
    gpu: &Gpu<'_>,
    kernel: &Arc<Kernel>,
    operands: [Operand<'_>; N],
    n: usize,
    lmax: usize,
) -> Result<()> {
    let blocks = gpu
        .binding
        .blocks("so3::spherical_harmonics", n, operands)?;
    let mut recording = gpu.recording();
    recording.dispatch_blocks(kernel, &blocks, |block| {
        let (wv, wo) = (block.bound[0], block.bound[N - 1]);
        let rows = block.rows.count;
        let params = ShParams {
            n: rows as u32,
            lmax: lmax as u32,
            dim: dim(lmax) as u32,
            v_offset: wv.skip(),
            out_offset: wo.skip(),
            _pad: [0; 3],
        };
        (params, rows.div_ceil(SH_WORKGROUP) as u32)
    })?;
    recording.submit()
}

const SPHERICAL_HARMONICS_BACKWARD: Shader = shader!("so3/spherical_harmonics_backward.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ShBackwardParams {
    n: u32,
    lmax: u32,
    dim: u32,
    v_offset: u32,
    g_offset: u32,
    out_offset: u32,
    y_offset: u32,
    _pad: u32,
}

/// `∂L/∂v` of the harmonics for `d_y`, in the form the device's tuner chooses (as the
/// forward's: the default written out).
pub(super) fn spherical_harmonics_backward(
    gpu: &Gpu<'_>,
    vectors: &Tensor,
    lmax: usize,
    d_y: &Tensor,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::spherical_harmonics_backward";
    let _call = crate::call::Call::enter(OP);
    // At lmax 0 the gradient is 0 and the written-out form reads no cotangent (its binding
    // would be left out of the layout): only the looping form runs it.
    let names: Vec<String> = FORMS
        .iter()
        .filter(|form| lmax > 0 || **form == "loop")
        .map(|form| form.to_string())
        .collect();
    let default = if lmax > 0 { "unrolled" } else { "loop" };
    let class = format!(
        "{OP} lmax {lmax} [{}] {} {}",
        vectors.shape()[0].max(1).next_power_of_two(),
        vectors.dtype(),
        d_y.dtype()
    );
    let form = gpu.tuner.choose(&class, &names, default, |form| {
        backward_form(gpu, form, vectors, lmax, d_y, out)?;
        gpu.wait()
    })?;
    backward_form(gpu, &form, vectors, lmax, d_y, out)
}

/// The backward in the form named `form`: written out, the forward recomputed in registers;
/// or looping, the forward recomputed into a scratch tensor, then one thread per vector
/// through the recursion in reverse.
fn backward_form(
    gpu: &Gpu<'_>,
    form: &str,
    vectors: &Tensor,
    lmax: usize,
    d_y: &Tensor,
    out: &Tensor,
) -> Result<()> {
    let n = vectors.shape()[0];
    let d = dim(lmax);
    let dtypes = Tensor::operands(["vectors", "g"], [vectors, d_y]);
    let (v, g, o) = (
        vectors.rows("vectors", 3),
        d_y.rows("d_y", d),
        out.rows("output", 3),
    );
    match form {
        "unrolled" => {
            let kernel = gpu.kernel_for(&unrolled::backward_shader(lmax), &dtypes)?;
            dispatch_backward(gpu, &kernel, [v, g, o], n, lmax)
        }
        _ => {
            let y = gpu.output(&[n, d])?;
            spherical_harmonics(gpu, vectors, lmax, &y)?;
            let kernel = gpu.kernel_for(&SPHERICAL_HARMONICS_BACKWARD, &dtypes)?;
            let [terms, starts] = recursion_buffers(gpu, lmax)?;
            let tables = [terms.buffer(), starts.buffer()].map(Operand::whole);
            let y = y.rows("harmonics", d);
            dispatch_backward(gpu, &kernel, [v, g, y, tables[0], tables[1], o], n, lmax)
        }
    }
}

/// One backward dispatch per block of `n` vectors, bound `[params, vectors, d_y, (harmonics,
/// table, starts,) output]`.
fn dispatch_backward<const N: usize>(
    gpu: &Gpu<'_>,
    kernel: &Arc<Kernel>,
    operands: [Operand<'_>; N],
    n: usize,
    lmax: usize,
) -> Result<()> {
    let blocks = gpu
        .binding
        .blocks("so3::spherical_harmonics_backward", n, operands)?;
    let mut recording = gpu.recording();
    recording.dispatch_blocks(kernel, &blocks, |block| {
        let rows = block.rows.count;
        let params = ShBackwardParams {
            n: rows as u32,
            lmax: lmax as u32,
            dim: dim(lmax) as u32,
            v_offset: block.bound[0].skip(),
            g_offset: block.bound[1].skip(),
            out_offset: block.bound[N - 1].skip(),
            // The harmonics, where they are bound (the looping form).
            y_offset: if N > 3 { block.bound[2].skip() } else { 0 },
            _pad: 0,
        };
        (params, rows.div_ceil(SH_WORKGROUP) as u32)
    })?;
    recording.submit()
}

const SPHERICAL_HARMONICS_DOUBLE_BACKWARD: Shader =
    shader!("so3/spherical_harmonics_double_backward.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ShDoubleBackwardParams {
    n: u32,
    lmax: u32,
    dim: u32,
    v_offset: u32,
    g_offset: u32,
    dd_offset: u32,
    y_offset: u32,
    out_v_offset: u32,
    out_g_offset: u32,
    _pad: [u32; 3],
}

/// The double backward for the cotangent `dd` of the backward's output: `out_v = H·dd` and
/// `out_g = J·dd`, the forward recomputed into a scratch tensor, then one thread per vector
/// in forward mode through the recursion and through the backward's reverse pass.
pub(super) fn spherical_harmonics_double_backward(
    gpu: &Gpu<'_>,
    [vectors, d_y, dd]: [&Tensor; 3],
    lmax: usize,
    [out_v, out_g]: [&Tensor; 2],
) -> Result<()> {
    const OP: &str = "so3::spherical_harmonics_double_backward";
    let _call = crate::call::Call::enter(OP);
    let n = vectors.shape()[0];
    let d = dim(lmax);
    let y = gpu.output(&[n, d])?;
    spherical_harmonics(gpu, vectors, lmax, &y)?;
    let kernel = gpu.kernel_for(
        &SPHERICAL_HARMONICS_DOUBLE_BACKWARD,
        &Tensor::operands(["vectors", "g", "dd"], [vectors, d_y, dd]),
    )?;
    let [terms, starts] = recursion_buffers(gpu, lmax)?;
    let operands = [
        vectors.rows("vectors", 3),
        d_y.rows("d_y", d),
        dd.rows("dd_vectors", 3),
        y.rows("harmonics", d),
        Operand::whole(terms.buffer()),
        Operand::whole(starts.buffer()),
        out_v.rows("output", 3),
        out_g.rows("output", d),
    ];
    let blocks = gpu.binding.blocks(OP, n, operands)?;
    let mut recording = gpu.recording();
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [wv, wg, wdd, wy, _, _, wov, wog] = block.bound;
        let rows = block.rows.count;
        let params = ShDoubleBackwardParams {
            n: rows as u32,
            lmax: lmax as u32,
            dim: d as u32,
            v_offset: wv.skip(),
            g_offset: wg.skip(),
            dd_offset: wdd.skip(),
            y_offset: wy.skip(),
            out_v_offset: wov.skip(),
            out_g_offset: wog.skip(),
            _pad: [0; 3],
        };
        (params, rows.div_ceil(SH_WORKGROUP) as u32)
    })?;
    recording.submit()
}
