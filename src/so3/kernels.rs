//! GPU launches of the SO(3) kernels. The tables they bind are built by the plans
//! ([`GridPlan::gpu_table`], [`FourierPlan::gpu_table`], …) and uploaded once per device.

use super::fft::{self, FftDirection};
use super::fourier::FourierPlan;
use super::grid::GridPlan;
use super::products::{PathTable, ProductTable};
use super::reference::{dim, recursion_table};
use crate::gpu::dispatch::Block;
use crate::gpu::pool::PooledBuffer;
use crate::gpu::{shader, GpuDevice, Kernel, Operand, Shader};
use crate::op::Gpu;
use crate::{Result, Tensor};
use std::sync::Arc;

const SPHERICAL_HARMONICS: Shader = shader!("so3/spherical_harmonics.wgsl");
const SH_WORKGROUP: usize = 64;

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

/// Uploads `table` once per device under `key`.
fn table<T: bytemuck::Pod>(
    gpu: &GpuDevice,
    key: &str,
    table: impl FnOnce() -> Vec<T>,
) -> Result<Arc<PooledBuffer>> {
    gpu.constant(key, || bytemuck::cast_slice(&table()).to_vec())
}

pub(super) fn spherical_harmonics(
    gpu: &Gpu<'_>,
    vectors: &Tensor,
    lmax: usize,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::spherical_harmonics";
    let kernel = gpu.kernel_for(&SPHERICAL_HARMONICS, &[("vectors", vectors.dtype())])?;
    // The table depends on lmax only: built and uploaded once per device.
    let built = std::cell::OnceCell::new();
    let build = || built.get_or_init(|| recursion_table(lmax));
    let terms = table(gpu, &format!("harmonics/{lmax}/table"), || {
        build().0.clone()
    })?;
    let starts = table(gpu, &format!("harmonics/{lmax}/starts"), || {
        build().1.clone()
    })?;
    let d = dim(lmax);
    let operands = [
        vectors.rows("vectors", 3),
        Operand::whole(terms.buffer()),
        Operand::whole(starts.buffer()),
        out.rows("output", d),
    ];
    let blocks = gpu.binding.blocks(OP, vectors.shape()[0], operands)?;
    let mut recording = gpu.recording();
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [wv, _, _, wo] = block.bound;
        let rows = block.rows.count;
        let params = ShParams {
            n: rows as u32,
            lmax: lmax as u32,
            dim: d as u32,
            v_offset: wv.skip(),
            out_offset: wo.skip(),
            _pad: [0; 3],
        };
        (params, rows.div_ceil(SH_WORKGROUP) as u32)
    })?;
    recording.submit()
}

/// A product `x1 [n, c, d1]`, `x2 [n, c or 1, d2]` → `out [n, c, d3]` as the kernels see it.
pub(super) struct ProductShape {
    pub channels: usize,
    /// x2 is `[n, 1, ·]`, one row per sample shared by its channels.
    pub broadcast: bool,
    pub d3: usize,
}

/// Runs a product kernel over blocks of whole samples that fit one binding each (a
/// broadcast x2 row stays with its channels), bound as `[params, x1, x2, extra…, tables…,
/// out]`; `launch(rows, [x1, x2, out] skips, extra skips)` gives a block's uniform and
/// workgroup count. `extra` operands split with the samples give their elements per sample.
fn launch_products<P: bytemuck::Pod>(
    gpu: &Gpu<'_>,
    (op, kernel): (&'static str, &Arc<Kernel>),
    ([x1, x2], out): ([&Tensor; 2], &Tensor),
    (extra, tables): (&[(Operand<'_>, Option<usize>)], &[&wgpu::Buffer]),
    shape: &ProductShape,
    launch: impl Fn(usize, [u32; 3], &[u32]) -> (P, u32),
) -> Result<()> {
    let ProductShape {
        channels,
        broadcast,
        d3,
    } = *shape;
    let (samples, d1, d2) = (x1.shape()[0], x1.shape()[2], x2.shape()[2]);
    let x2_rows_per_sample = if broadcast { 1 } else { channels };
    let mut operands = vec![
        x1.rows("x1", channels * d1),
        x2.rows("x2", x2_rows_per_sample * d2),
    ];
    operands.extend(extra.iter().map(|(operand, _)| *operand));
    operands.extend(tables.iter().map(|t| Operand::whole(t)));
    operands.push(out.rows("output", channels * d3));
    let mut per_row = vec![
        ("x1", channels * d1),
        ("x2", x2_rows_per_sample * d2),
        ("output", channels * d3),
    ];
    per_row.extend(
        extra
            .iter()
            .filter_map(|(_, len)| len.map(|l| ("extra", l))),
    );
    let mut recording = gpu.recording();
    for rows in gpu.binding.row_blocks(op, samples, &per_row)? {
        let bound = gpu.binding.bind_slice(op, rows, &operands)?;
        let skips = [0, 1, bound.len() - 1].map(|i| bound[i].skip());
        let extra_skips: Vec<u32> = (0..extra.len()).map(|i| bound[2 + i].skip()).collect();
        let (params, groups) = launch(rows.count * channels, skips, &extra_skips);
        recording.dispatch(kernel, &params, &bound, groups)?;
    }
    recording.submit()
}

const SPARSE_PRODUCT: Shader = shader!("so3/sparse_product.wgsl");
const SPARSE_PRODUCT_ROWS: Shader = shader!("so3/sparse_product_rows.wgsl");

/// Whether a product is small enough for one thread per output element
/// (sparse_product_rows.wgsl) rather than a workgroup per few rows staged in workgroup memory.
/// On lavapipe (n·c = 4096, CG 0..l ⊗ 0..l → 0..l) the per-output kernel takes 3.0 ms at l = 2
/// against the staged one's 3.6, and 12.5 against 7.3 at l = 3; for the potential's per-edge
/// products (l ≤ 2, 9 terms) it is 4–8× faster.
fn per_output(d1: usize, d2: usize, d3: usize) -> bool {
    d1.max(d2).max(d3) <= PER_OUTPUT_MAX_DIM
}

/// The widest rows (coefficients: degree 2) the per-output kernel is chosen for.
const PER_OUTPUT_MAX_DIM: usize = 9;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ProductParams {
    rows: u32,
    d1: u32,
    d2: u32,
    d3: u32,
    group: u32,
    x1_offset: u32,
    x2_offset: u32,
    out_offset: u32,
    weighted: u32,
    paths: u32,
    w_channels: u32,
    w_offset: u32,
    per_group: u32,
    _pad: [u32; 3],
}

/// Rows a product workgroup stages at once: up to ROWS, as many as STAGE floats hold at the
/// widest of `widths` (4 up to degree 16, 1 at MAX_L).
fn rows_per_group(widths: &[usize]) -> usize {
    use crate::gpu::shader_constants::so3_sparse_product::{ROWS, STAGE};
    let widest = widths.iter().copied().max().unwrap_or(1).max(1);
    (STAGE / widest).clamp(1, ROWS)
}

/// Path weights of a product on the device: `[samples, channels, paths]`, or
/// `[1, channels, paths]` shared by every sample.
pub(super) struct PathWeights<'a> {
    pub tensor: &'a Tensor,
    pub paths: usize,
    pub shared: bool,
}

/// `out[s, c, :] = table(x1[s, c, :], x2[s, c or 0, :])` for `samples × channels` rows, each
/// term times its path's weight when `weights` are given.
pub(super) fn sparse_product(
    gpu: &Gpu<'_>,
    table_key: String,
    product: &ProductTable,
    inputs: [&Tensor; 2],
    weights: Option<&PathWeights<'_>>,
    shape: &ProductShape,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::product";
    let [x1, x2] = inputs;
    let mut operand_types = Tensor::operands(["x1", "x2"], inputs).to_vec();
    if let Some(w) = weights {
        operand_types.push(("weights", w.tensor.dtype()));
    }
    let (d1, d2) = (x1.shape()[2], x2.shape()[2]);
    let small = per_output(d1, d2, shape.d3);
    let shader = if small {
        &SPARSE_PRODUCT_ROWS
    } else {
        &SPARSE_PRODUCT
    };
    let kernel = gpu.kernel_for(shader, &operand_types)?;
    let terms = table(gpu, &format!("{table_key}/terms"), || product.gpu_terms())?;
    let starts = table(gpu, &format!("{table_key}/starts"), || {
        product.starts.clone()
    })?;
    let tables = [terms.buffer(), starts.buffer()];
    let per_group = rows_per_group(&[x1.shape()[2], x2.shape()[2]]);
    // Unweighted products bind the terms in the weights' place (never read).
    let weight_operand = match weights {
        Some(w) if w.shared => (w.tensor.all("weights"), None),
        Some(w) => {
            let per_sample = shape.channels * w.paths;
            (w.tensor.rows("weights", per_sample), Some(per_sample))
        }
        None => (Operand::whole(terms.buffer()), None),
    };
    launch_products(
        gpu,
        (OP, &kernel),
        (inputs, out),
        (&[weight_operand], &tables),
        shape,
        |rows, [s1, s2, so], extra| {
            let params = ProductParams {
                rows: rows as u32,
                d1: x1.shape()[2] as u32,
                d2: x2.shape()[2] as u32,
                d3: shape.d3 as u32,
                group: if shape.broadcast {
                    shape.channels as u32
                } else {
                    1
                },
                x1_offset: s1,
                x2_offset: s2,
                out_offset: so,
                weighted: weights.is_some() as u32,
                paths: weights.map_or(0, |w| w.paths) as u32,
                w_channels: match weights {
                    Some(w) if w.shared => shape.channels as u32,
                    _ => 0,
                },
                w_offset: extra[0],
                per_group: per_group as u32,
                _pad: [0; 3],
            };
            let groups = if small {
                (rows * shape.d3).div_ceil(crate::gpu::ELEMENTWISE_WORKGROUP as usize)
            } else {
                rows.div_ceil(per_group)
            };
            (params, groups as u32)
        },
    )
}

const GAUNT_GRID: Shader = shader!("so3/gaunt_grid.wgsl");
const GAUNT_GRID_GLOBAL: Shader = shader!("so3/gaunt_grid_global.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct GridParams {
    rows: u32,
    channels: u32,
    broadcast: u32,
    l1: u32,
    l2: u32,
    lmax_out: u32,
    n_beta: u32,
    l_table: u32,
    theta_offset: u32,
    weighted_offset: u32,
    x1_offset: u32,
    x2_offset: u32,
    out_offset: u32,
    scratch_stride: u32,
    rings_at: u32,
    products_at: u32,
}

/// Whether the workgroup arrays of gaunt_grid.wgsl hold this plan: inputs of degree at most
/// `MAX_DEGREE` (`coefficients`), both inputs' complex ring coefficients c_k, k ≥ 0
/// (`rings`) and the output's, as sum and difference per mirrored ring pair (`products`).
pub(super) fn grid_fits(plan: &GridPlan) -> bool {
    use crate::gpu::shader_constants::so3_gaunt_grid::{MAX_DEGREE, PRODUCTS, RINGS};
    let nb = plan.n_beta;
    plan.l1.max(plan.l2) <= MAX_DEGREE
        && nb * (plan.l1 + plan.l2 + 2) <= RINGS
        && 2 * nb.div_ceil(2) * (2 * plan.lmax_out + 1) <= PRODUCTS
}

/// Scratch for the `*_global.wgsl` kernels, which keep a row's stages in storage: `per_sample`
/// f32s for each sample of the largest launch (as many samples as fit one binding; launch
/// blocks are cut to that by `launch_products`). None when `per_sample` is 0 (the stages fit
/// workgroup memory).
fn row_scratch(gpu: &Gpu<'_>, samples: usize, per_sample: usize) -> Result<Option<PooledBuffer>> {
    if per_sample == 0 {
        return Ok(None);
    }
    let fit = (gpu.binding.max_elements() / per_sample as u64) as usize;
    Ok(Some(gpu.storage(samples.min(fit).max(1) * per_sample)?))
}

/// The scratch as `launch_products`' extra operand: the same window in every block, and
/// `per_sample` f32s per sample for cutting the blocks.
fn scratch_operand(
    scratch: &Option<PooledBuffer>,
    per_sample: usize,
) -> Vec<(Operand<'_>, Option<usize>)> {
    scratch
        .iter()
        .map(|s| {
            let len = (s.buffer().size() / 4) as usize;
            (Operand::fixed("scratch", s.buffer(), len), Some(per_sample))
        })
        .collect()
}

/// A row's stages in gaunt_grid_global.wgsl's scratch, in f32s: `(stride, rings_at,
/// products_at)` — both inputs' coefficients, their rings' complex coefficients, the products.
fn grid_scratch_layout(plan: &GridPlan) -> (usize, usize, usize) {
    let coefficients = (plan.l1 + 1).pow(2) + (plan.l2 + 1).pow(2);
    let rings = 2 * plan.n_beta * (plan.l1 + plan.l2 + 2);
    let products = 2 * plan.n_beta.div_ceil(2) * (2 * plan.lmax_out + 1);
    (
        coefficients + rings + products,
        coefficients,
        coefficients + rings,
    )
}

/// The Gaunt product on the grid of `plan`, one workgroup per (sample, channel) row: its
/// stages in workgroup memory where they fit (`grid_fits`), else in a storage scratch slice
/// per row (gaunt_grid_global.wgsl: the same arithmetic, so every degree up to `MAX_L` runs
/// and gives what the CPU path gives; launches are cut so that the scratch fits one binding).
pub(super) fn gaunt_grid(
    gpu: &Gpu<'_>,
    plan: &GridPlan,
    inputs: [&Tensor; 2],
    shape: &ProductShape,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::gaunt_product (Grid)";
    let in_workgroup = grid_fits(plan);
    let shader = if in_workgroup {
        &GAUNT_GRID
    } else {
        &GAUNT_GRID_GLOBAL
    };
    let kernel = gpu.kernel_for(shader, &Tensor::operands(["x1", "x2"], inputs))?;
    let key = format!("gaunt_grid/{}/{}/{}", plan.l1, plan.l2, plan.lmax_out);
    let tables = table(gpu, &key, || plan.gpu_table())?;
    let (stride, rings_at, products_at) = if in_workgroup {
        (0, 0, 0)
    } else {
        grid_scratch_layout(plan)
    };
    let scratch = row_scratch(gpu, inputs[0].shape()[0], shape.channels * stride)?;
    let extra = scratch_operand(&scratch, shape.channels * stride);
    launch_products(
        gpu,
        (OP, &kernel),
        (inputs, out),
        (&extra, &[tables.buffer()]),
        shape,
        |rows, [s1, s2, so], _| {
            let params = GridParams {
                rows: rows as u32,
                channels: shape.channels as u32,
                broadcast: shape.broadcast as u32,
                l1: plan.l1 as u32,
                l2: plan.l2 as u32,
                lmax_out: plan.lmax_out as u32,
                n_beta: plan.n_beta as u32,
                l_table: plan.l_table as u32,
                theta_offset: 0,
                weighted_offset: plan.theta.len() as u32,
                x1_offset: s1,
                x2_offset: s2,
                out_offset: so,
                scratch_stride: stride as u32,
                rings_at: rings_at as u32,
                products_at: products_at as u32,
            };
            (params, rows as u32)
        },
    )
}

/// Values of a kernel's `override` constants.
type OverrideConstants = Vec<(&'static str, f64)>;

/// The `override` constants and the twiddle and order tables of a `[rows, cols]` FFT grid,
/// uploaded once per shape.
fn fft_shape(
    gpu: &GpuDevice,
    shape: [usize; 2],
) -> Result<(OverrideConstants, [Arc<PooledBuffer>; 2])> {
    let [rows, cols] = shape;
    let built = std::cell::OnceCell::new();
    let build = || built.get_or_init(|| fft::kernel_tables(shape));
    let twiddles = table(gpu, &format!("fft/{rows}/{cols}/twiddles"), || {
        build().0.clone()
    })?;
    let positions = table(gpu, &format!("fft/{rows}/{cols}/positions"), || {
        build().1.clone()
    })?;
    Ok((fft::kernel_constants(shape), [twiddles, positions]))
}

const FFT2: Shader = shader!("so3/fft.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Fft2Params {
    grids: u32,
    inverse: u32,
    input_offset: u32,
    output_offset: u32,
}

/// The 2D FFT of every `[rows, cols]` complex grid of `x`, one workgroup per grid.
pub(super) fn fft2(
    gpu: &Gpu<'_>,
    x: &Tensor,
    shape: [usize; 2],
    direction: FftDirection,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::fft2";
    let (constants, [twiddles, positions]) = fft_shape(gpu, shape)?;
    let kernel = gpu.kernel_with(&FFT2, &[("input", x.dtype())], &constants)?;
    let size = 2 * shape[0] * shape[1];
    let operands = [
        x.rows("x", size),
        Operand::whole(twiddles.buffer()),
        Operand::whole(positions.buffer()),
        out.rows("output", size),
    ];
    let blocks: Vec<Block<'_, 4>> = gpu.binding.blocks(OP, x.shape()[0], operands)?;
    let mut recording = gpu.recording();
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [wi, _, _, wo] = block.bound;
        let params = Fft2Params {
            grids: block.rows.count as u32,
            inverse: (direction == FftDirection::Inverse) as u32,
            input_offset: wi.skip(),
            output_offset: wo.skip(),
        };
        (params, block.rows.count as u32)
    })?;
    recording.submit()
}

const GAUNT_FOURIER: Shader = shader!("so3/gaunt_fourier.wgsl");
const GAUNT_FOURIER_GLOBAL: Shader = shader!("so3/gaunt_fourier_global.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FourierParams {
    rows: u32,
    channels: u32,
    broadcast: u32,
    l1: u32,
    l2: u32,
    lmax_out: u32,
    l_table: u32,
    product_degree: u32,
    projection_offset: u32,
    x1_offset: u32,
    x2_offset: u32,
    out_offset: u32,
    scratch_stride: u32,
    _pad: [u32; 3],
}

/// Whether one product's FFT grid fits the workgroup array of fft.inc.wgsl.
pub(super) fn fourier_fits(plan: &FourierPlan) -> bool {
    plan.n_u * plan.n_v <= fft::FFT_CAPACITY
}

/// The Gaunt product by the 2D-Fourier route, one workgroup (one FFT grid) per row: the grid
/// in workgroup memory where it fits (`fourier_fits`), else in a storage scratch slice per row
/// (gaunt_fourier_global.wgsl, the same arithmetic).
pub(super) fn gaunt_fourier(
    gpu: &Gpu<'_>,
    plan: &FourierPlan,
    inputs: [&Tensor; 2],
    shape: &ProductShape,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::gaunt_product (Fourier)";
    let in_workgroup = fourier_fits(plan);
    let shader = if in_workgroup {
        &GAUNT_FOURIER
    } else {
        &GAUNT_FOURIER_GLOBAL
    };
    let (constants, [twiddles, positions]) = fft_shape(gpu, [plan.n_u, plan.n_v])?;
    let operands = Tensor::operands(["x1", "x2"], inputs);
    let kernel = gpu.kernel_with(shader, &operands, &constants)?;
    let key = format!("gaunt_fourier/{}/{}/{}", plan.l1, plan.l2, plan.lmax_out);
    let tables = table(gpu, &key, || plan.gpu_table())?;
    let buffers = [tables.buffer(), twiddles.buffer(), positions.buffer()];
    let stride = if in_workgroup {
        0
    } else {
        2 * plan.n_u * plan.n_v
    };
    let scratch = row_scratch(gpu, inputs[0].shape()[0], shape.channels * stride)?;
    let extra = scratch_operand(&scratch, shape.channels * stride);
    launch_products(
        gpu,
        (OP, &kernel),
        (inputs, out),
        (&extra, &buffers),
        shape,
        |rows, [s1, s2, so], _| {
            let params = FourierParams {
                rows: rows as u32,
                channels: shape.channels as u32,
                broadcast: shape.broadcast as u32,
                l1: plan.l1 as u32,
                l2: plan.l2 as u32,
                lmax_out: plan.lmax_out as u32,
                l_table: plan.l_table as u32,
                product_degree: (plan.l1 + plan.l2) as u32,
                projection_offset: plan.theta.len() as u32,
                x1_offset: s1,
                x2_offset: s2,
                out_offset: so,
                scratch_stride: stride as u32,
                _pad: [0; 3],
            };
            (params, rows as u32)
        },
    )
}

const PATH_GRADIENT: Shader = shader!("so3/path_gradient.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PathGradientParams {
    rows: u32,
    d1: u32,
    d2: u32,
    d3: u32,
    group: u32,
    paths: u32,
    x1_offset: u32,
    x2_offset: u32,
    g_offset: u32,
    out_offset: u32,
    _pad: [u32; 2],
}

/// `out[s, c, p] = Σ_{terms of p} C·x1[s, c, i1]·x2[s, c or 0, i2]·g[s, c, i3]`: the
/// gradient of per-row path weights, `[samples, channels, paths]`.
pub(super) fn path_gradient(
    gpu: &Gpu<'_>,
    table_key: String,
    paths: &PathTable,
    [x1, x2, g]: [&Tensor; 3],
    shape: &ProductShape,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::weighted_cg_product_backward";
    let count = paths.starts.len() - 1;
    let kernel = gpu.kernel_for(
        &PATH_GRADIENT,
        &Tensor::operands(["x1", "x2", "g"], [x1, x2, g]),
    )?;
    let terms = table(gpu, &format!("{table_key}/path_terms"), || {
        paths.gpu_terms()
    })?;
    let starts = table(gpu, &format!("{table_key}/path_starts"), || {
        paths.starts.clone()
    })?;
    let d3 = g.shape()[2];
    let g_operand = (
        g.rows("d_out", shape.channels * d3),
        Some(shape.channels * d3),
    );
    // The product's layout with out = ∂w ([s, c, paths]) and g as an extra input.
    let as_product = ProductShape {
        channels: shape.channels,
        broadcast: shape.broadcast,
        d3: count,
    };
    launch_products(
        gpu,
        (OP, &kernel),
        ([x1, x2], out),
        (&[g_operand], &[terms.buffer(), starts.buffer()]),
        &as_product,
        |rows, [s1, s2, so], extra| {
            let params = PathGradientParams {
                rows: rows as u32,
                d1: x1.shape()[2] as u32,
                d2: x2.shape()[2] as u32,
                d3: d3 as u32,
                group: if shape.broadcast {
                    shape.channels as u32
                } else {
                    1
                },
                paths: count as u32,
                x1_offset: s1,
                x2_offset: s2,
                g_offset: extra[0],
                out_offset: so,
                _pad: [0; 2],
            };
            let groups = (rows * count).div_ceil(crate::gpu::ELEMENTWISE_WORKGROUP as usize);
            (params, groups as u32)
        },
    )
}

const LINEAR: Shader = shader!("so3/linear.wgsl");
const LINEAR_WEIGHT_GRADIENT: Shader = shader!("so3/linear_weight_gradient.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LinearParams {
    rows: u32,
    contracted: u32,
    channels: u32,
    dim: u32,
    w_columns: u32,
    transposed: u32,
    x_offset: u32,
    w_offset: u32,
    out_offset: u32,
    _pad: [u32; 3],
}

/// `out[n, o, ·] = Σ_k W(l, k, o)·x[n, k, ·]` with `[contracted, channels]` the channels of
/// x and out; W is `w[l][k][o]`, or `w[l][o][k]` when `transposed` (the input gradient).
pub(super) fn linear(
    gpu: &Gpu<'_>,
    [x, w]: [&Tensor; 2],
    [contracted, channels]: [usize; 2],
    transposed: bool,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::linear";
    let (n, d) = (x.shape()[0], x.shape()[2]);
    let kernel = gpu.kernel_for(&LINEAR, &Tensor::operands(["x", "w"], [x, w]))?;
    let blocks = gpu.binding.blocks(
        OP,
        n,
        [
            x.rows("x", contracted * d),
            w.all("w"),
            out.rows("output", channels * d),
        ],
    )?;
    let mut recording = gpu.recording();
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [wx, ww, wo] = block.bound;
        let rows = block.rows.count;
        let params = LinearParams {
            rows: rows as u32,
            contracted: contracted as u32,
            channels: channels as u32,
            dim: d as u32,
            w_columns: w.shape()[2] as u32,
            transposed: transposed as u32,
            x_offset: wx.skip(),
            w_offset: ww.skip(),
            out_offset: wo.skip(),
            _pad: [0; 3],
        };
        let groups = (rows * channels * d).div_ceil(crate::gpu::ELEMENTWISE_WORKGROUP as usize);
        (params, groups as u32)
    })?;
    recording.submit()
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct WeightGradientParams {
    rows: u32,
    c_in: u32,
    c_out: u32,
    dim: u32,
    lmax: u32,
    accumulate: u32,
    x_offset: u32,
    g_offset: u32,
}

/// `∂w[l][i][o] = Σ_n Σ_m x[n, i, ·]·g[n, o, ·]` over blocks of samples that fit one binding,
/// each block added to the last.
pub(super) fn linear_weight_gradient(
    gpu: &Gpu<'_>,
    [x, g]: [&Tensor; 2],
    [c_in, c_out]: [usize; 2],
    lmax: usize,
    dw: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::linear_backward";
    let (n, d) = (x.shape()[0], x.shape()[2]);
    let kernel = gpu.kernel_for(
        &LINEAR_WEIGHT_GRADIENT,
        &Tensor::operands(["x", "g"], [x, g]),
    )?;
    let blocks = gpu.binding.blocks(
        OP,
        n,
        [
            x.rows("x", c_in * d),
            g.rows("d_out", c_out * d),
            dw.all("w"),
        ],
    )?;
    let mut recording = gpu.recording();
    let weights = (lmax + 1) * c_in * c_out;
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [wx, wg, _] = block.bound;
        let params = WeightGradientParams {
            rows: block.rows.count as u32,
            c_in: c_in as u32,
            c_out: c_out as u32,
            dim: d as u32,
            lmax: lmax as u32,
            accumulate: (block.rows.first > 0) as u32,
            x_offset: wx.skip(),
            g_offset: wg.skip(),
        };
        let groups = weights.div_ceil(crate::gpu::ELEMENTWISE_WORKGROUP as usize);
        (params, groups as u32)
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

/// `∂L/∂v` of the harmonics for `d_y`: the forward recomputed into a scratch tensor, then
/// one thread per vector through the recursion in reverse.
pub(super) fn spherical_harmonics_backward(
    gpu: &Gpu<'_>,
    vectors: &Tensor,
    lmax: usize,
    d_y: &Tensor,
    out: &Tensor,
) -> Result<()> {
    const OP: &str = "so3::spherical_harmonics_backward";
    let n = vectors.shape()[0];
    let d = dim(lmax);
    let y = gpu.output(&[n, d])?;
    spherical_harmonics(gpu, vectors, lmax, &y)?;
    let kernel = gpu.kernel_for(
        &SPHERICAL_HARMONICS_BACKWARD,
        &Tensor::operands(["vectors", "g"], [vectors, d_y]),
    )?;
    let built = std::cell::OnceCell::new();
    let build = || built.get_or_init(|| recursion_table(lmax));
    let terms = table(gpu, &format!("harmonics/{lmax}/table"), || {
        build().0.clone()
    })?;
    let starts = table(gpu, &format!("harmonics/{lmax}/starts"), || {
        build().1.clone()
    })?;
    let operands = [
        vectors.rows("vectors", 3),
        d_y.rows("d_y", d),
        y.rows("harmonics", d),
        Operand::whole(terms.buffer()),
        Operand::whole(starts.buffer()),
        out.rows("output", 3),
    ];
    let blocks = gpu.binding.blocks(OP, n, operands)?;
    let mut recording = gpu.recording();
    recording.dispatch_blocks(&kernel, &blocks, |block| {
        let [wv, wg, wy, _, _, wo] = block.bound;
        let rows = block.rows.count;
        let params = ShBackwardParams {
            n: rows as u32,
            lmax: lmax as u32,
            dim: d as u32,
            v_offset: wv.skip(),
            g_offset: wg.skip(),
            out_offset: wo.skip(),
            y_offset: wy.skip(),
            _pad: 0,
        };
        (params, rows.div_ceil(SH_WORKGROUP) as u32)
    })?;
    recording.submit()
}
