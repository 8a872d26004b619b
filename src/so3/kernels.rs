//! GPU launches of the SO(3) kernels.

use std::sync::Arc;

use super::fft;
use super::fourier::FourierPlan;
use super::grid::GridPlan;
use super::products::ProductTable;
use super::reference::{dim, recursion};
use crate::gpu::dispatch::{row_blocks, Window};
use crate::gpu::pool::PooledBuffer;
use crate::gpu::{binding, shader, GpuDevice, Kernel, Shader};
use crate::{Result, Tensor};

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

/// The recursion as the kernel reads it: nonzero `(i, j, k, c_l·C[i,j,k])` of every step
/// l = 2..=lmax, and `starts[l]..starts[l+1]` delimiting step l.
fn recursion_table(lmax: usize) -> (Vec<[f32; 4]>, Vec<u32>) {
    let mut table = Vec::new();
    let mut starts = vec![0u32; lmax.max(1) + 2];
    for (l, (cg, c)) in (2..=lmax).zip(recursion(lmax)) {
        starts[l] = table.len() as u32;
        let n_out = 2 * l + 1;
        for (at, &w) in cg.iter().enumerate() {
            if w != 0.0 {
                let (i, j, k) = (at / (3 * n_out), (at / n_out) % 3, at % n_out);
                table.push([i as f32, j as f32, k as f32, (c * w) as f32]);
            }
        }
        starts[l + 1] = table.len() as u32;
    }
    if table.is_empty() {
        table.push([0.0; 4]); // bindings may not be empty
    }
    (table, starts)
}

pub(super) fn spherical_harmonics(
    gpu: &GpuDevice,
    vectors: &Tensor,
    n: usize,
    lmax: usize,
    out: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "so3::spherical_harmonics";
    let kernel = gpu.kernel_for(&SPHERICAL_HARMONICS, &[("vectors", vectors.dtype())])?;
    // The table depends on lmax only: built and uploaded once per context.
    let built = std::cell::OnceCell::new();
    let build = || built.get_or_init(|| recursion_table(lmax));
    let table = gpu.constant(&format!("harmonics/{lmax}/table"), || {
        bytemuck::cast_slice(&build().0).to_vec()
    })?;
    let starts = gpu.constant(&format!("harmonics/{lmax}/starts"), || {
        bytemuck::cast_slice(&build().1).to_vec()
    })?;
    let limits = gpu.binding;
    let d = dim(lmax);
    let mut launches = Vec::new();
    for (row0, rows) in row_blocks(OP, "output", n, d.max(3), &limits)? {
        let wv = limits.window_of(
            OP,
            "vectors",
            vectors.dtype(),
            (row0 * 3) as u64,
            (rows * 3) as u64,
            vectors.buffer().size(),
        )?;
        let wo = limits.window(
            OP,
            "output",
            (row0 * d) as u64,
            (rows * d) as u64,
            out.size(),
        )?;
        let uniform = gpu.uniform(&ShParams {
            n: rows as u32,
            lmax: lmax as u32,
            dim: d as u32,
            v_offset: wv.skip,
            out_offset: wo.skip,
            _pad: [0; 3],
        })?;
        launches.push((uniform, wv, wo, rows.div_ceil(SH_WORKGROUP) as u32));
    }
    gpu.submit(|encoder| {
        for (uniform, wv, wo, groups) in &launches {
            let resources = [
                uniform.buffer().as_entire_binding(),
                binding(vectors.buffer(), wv),
                table.buffer().as_entire_binding(),
                starts.buffer().as_entire_binding(),
                binding(out, wo),
            ];
            gpu.dispatch(encoder, &kernel, &resources, *groups);
        }
        Ok(())
    })
}

const SPARSE_PRODUCT: Shader = shader!("so3/sparse_product.wgsl");
/// Rows per workgroup of the sparse product (ROWS in sparse_product.wgsl).
const PRODUCT_ROWS: usize = 4;

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
}

/// Blocks of whole samples of a product `x1 [n, c, d1]`, `x2 [n, c or 1, d2]` →
/// `out [n, c, d3]` that fit one binding each (a broadcast x2 row stays with its channels):
/// `(rows, [x1, x2, out windows])`.
fn sample_blocks(
    gpu: &GpuDevice,
    op: &'static str,
    [x1, x2]: [&Tensor; 2],
    channels: usize,
    broadcast: bool,
    d3: usize,
    out: &wgpu::Buffer,
) -> Result<Vec<(usize, [Window; 3])>> {
    let (samples, d1, d2) = (x1.shape()[0], x1.shape()[2], x2.shape()[2]);
    let x2_rows_per_sample = if broadcast { 1 } else { channels };
    let limits = gpu.binding;
    row_blocks(op, "x1", samples, channels * d1.max(d2).max(d3), &limits)?
        .into_iter()
        .map(|(s0, ns)| {
            let rows = ns * channels;
            let (f1, n1) = ((s0 * channels * d1) as u64, (rows * d1) as u64);
            let w1 = limits.window_of(op, "x1", x1.dtype(), f1, n1, x1.buffer().size())?;
            let (f2, n2) = (
                (s0 * x2_rows_per_sample * d2) as u64,
                (ns * x2_rows_per_sample * d2) as u64,
            );
            let w2 = limits.window_of(op, "x2", x2.dtype(), f2, n2, x2.buffer().size())?;
            let (f3, n3) = ((s0 * channels * d3) as u64, (rows * d3) as u64);
            let wo = limits.window(op, "output", f3, n3, out.size())?;
            Ok((rows, [w1, w2, wo]))
        })
        .collect()
}

/// Runs a product kernel once per block of [`sample_blocks`], bound as
/// `[params, x1, x2, tables…, out]`; `launch(rows, windows)` gives a block's uniform and
/// workgroup count.
fn launch_products<P: bytemuck::Pod>(
    gpu: &GpuDevice,
    kernel: &Kernel,
    blocks: Vec<(usize, [Window; 3])>,
    [x1, x2]: [&Tensor; 2],
    tables: &[&wgpu::Buffer],
    out: &wgpu::Buffer,
    launch: impl Fn(usize, &[Window; 3]) -> (P, u32),
) -> Result<()> {
    let mut launches = Vec::new();
    for (rows, windows) in blocks {
        let (params, groups) = launch(rows, &windows);
        launches.push((gpu.uniform(&params)?, windows, groups));
    }
    gpu.submit(|encoder| {
        for (uniform, [w1, w2, wo], groups) in &launches {
            let mut resources = vec![
                uniform.buffer().as_entire_binding(),
                binding(x1.buffer(), w1),
                binding(x2.buffer(), w2),
            ];
            resources.extend(tables.iter().map(|t| t.as_entire_binding()));
            resources.push(binding(out, wo));
            gpu.dispatch(encoder, kernel, &resources, *groups);
        }
        Ok(())
    })
}

/// `out[s, c, :] = table(x1[s, c, :], x2[s, c or 0, :])` for `samples × channels` rows.
pub(super) fn sparse_product(
    gpu: &GpuDevice,
    table_key: String,
    table: &ProductTable,
    [x1, x2]: [&Tensor; 2],
    channels: usize,
    broadcast: bool,
    out: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "so3::product";
    let kernel = gpu.kernel_for(&SPARSE_PRODUCT, &[("x1", x1.dtype()), ("x2", x2.dtype())])?;
    let terms = gpu.constant(&format!("{table_key}/terms"), || {
        let mut t: Vec<[f32; 4]> = table
            .terms
            .iter()
            .map(|&(i1, i2, w)| [i1 as f32, i2 as f32, w as f32, 0.0])
            .collect();
        if t.is_empty() {
            t.push([0.0; 4]); // bindings may not be empty
        }
        bytemuck::cast_slice(&t).to_vec()
    })?;
    let starts = gpu.constant(&format!("{table_key}/starts"), || {
        bytemuck::cast_slice(&table.starts).to_vec()
    })?;
    let d3 = table.starts.len() - 1;
    let blocks = sample_blocks(gpu, OP, [x1, x2], channels, broadcast, d3, out)?;
    let tables = [terms.buffer(), starts.buffer()];
    launch_products(
        gpu,
        &kernel,
        blocks,
        [x1, x2],
        &tables,
        out,
        |rows, [w1, w2, wo]| {
            let params = ProductParams {
                rows: rows as u32,
                d1: x1.shape()[2] as u32,
                d2: x2.shape()[2] as u32,
                d3: d3 as u32,
                group: if broadcast { channels as u32 } else { 1 },
                x1_offset: w1.skip,
                x2_offset: w2.skip,
                out_offset: wo.skip,
            };
            (params, rows.div_ceil(PRODUCT_ROWS) as u32)
        },
    )
}

const GAUNT_GRID: Shader = shader!("so3/gaunt_grid.wgsl");

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
    _pad: [u32; 3],
}

/// Whether the workgroup arrays of gaunt_grid.wgsl hold this plan: inputs of degree ≤ 16
/// (`coefficients`), both inputs' complex ring coefficients c_k, k ≥ 0 (`rings`, 759) and
/// the output's, as sum and difference per mirrored ring pair (`products`, 1035).
pub(super) fn grid_fits(plan: &GridPlan) -> bool {
    let nb = plan.n_beta;
    plan.l1.max(plan.l2) <= 16
        && nb * (plan.l1 + plan.l2 + 2) <= 759
        && 2 * nb.div_ceil(2) * (2 * plan.lmax_out + 1) <= 1035
}

/// The Gaunt product on the grid of `plan`, one workgroup per (sample, channel) row.
pub(super) fn gaunt_grid(
    gpu: &GpuDevice,
    plan: &GridPlan,
    [x1, x2]: [&Tensor; 2],
    channels: usize,
    broadcast: bool,
    out: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "so3::gaunt_product (Grid)";
    let kernel = gpu.kernel_for(&GAUNT_GRID, &[("x1", x1.dtype()), ("x2", x2.dtype())])?;
    let key = format!("gaunt_grid/{}/{}/{}", plan.l1, plan.l2, plan.lmax_out);
    let tables = gpu.constant(&key, || {
        let all: Vec<f32> = [&plan.theta, &plan.theta_weighted]
            .into_iter()
            .flat_map(|t| t.iter().map(|&v| v as f32))
            .collect();
        bytemuck::cast_slice(&all).to_vec()
    })?;
    let blocks = sample_blocks(
        gpu,
        OP,
        [x1, x2],
        channels,
        broadcast,
        dim(plan.lmax_out),
        out,
    )?;
    launch_products(
        gpu,
        &kernel,
        blocks,
        [x1, x2],
        &[tables.buffer()],
        out,
        |rows, [w1, w2, wo]| {
            let params = GridParams {
                rows: rows as u32,
                channels: channels as u32,
                broadcast: broadcast as u32,
                l1: plan.l1 as u32,
                l2: plan.l2 as u32,
                lmax_out: plan.lmax_out as u32,
                n_beta: plan.n_beta as u32,
                l_table: plan.l_table as u32,
                theta_offset: 0,
                weighted_offset: plan.theta.len() as u32,
                x1_offset: w1.skip,
                x2_offset: w2.skip,
                out_offset: wo.skip,
                _pad: [0; 3],
            };
            (params, rows as u32)
        },
    )
}

/// The `override` constants of so3/fft.inc.wgsl for a row-major `[rows, cols]` grid, and its
/// tables: twiddles `w_n^k` and digit-reversed orders (rows' first, then cols'), uploaded
/// once per shape.
type FftConstants = Vec<(&'static str, f64)>;

fn fft_shape(
    gpu: &GpuDevice,
    [rows, cols]: [usize; 2],
) -> Result<(FftConstants, [Arc<PooledBuffer>; 2])> {
    let radices = |n: usize| fft::radices(n).expect("checked by fft2_fits");
    // Radix t in byte t % 4 of the low (t < 4) or high word.
    let packed = |n: usize, words: std::ops::Range<usize>| {
        radices(n)
            .iter()
            .enumerate()
            .filter(|(t, _)| words.contains(t))
            .map(|(t, &r)| (r as u32) << (8 * (t % 4)))
            .sum::<u32>() as f64
    };
    let constants = vec![
        ("FFT_U", rows as f64),
        ("FFT_V", cols as f64),
        ("FFT_U_STAGES", radices(rows).len() as f64),
        ("FFT_V_STAGES", radices(cols).len() as f64),
        ("FFT_U_RADICES_LO", packed(rows, 0..4)),
        ("FFT_U_RADICES_HI", packed(rows, 4..8)),
        ("FFT_V_RADICES_LO", packed(cols, 0..4)),
        ("FFT_V_RADICES_HI", packed(cols, 4..8)),
    ];
    let twiddles = gpu.constant(&format!("fft/{rows}/{cols}/twiddles"), || {
        let all: Vec<[f32; 2]> = [rows, cols].into_iter().flat_map(fft::twiddles).collect();
        bytemuck::cast_slice(&all).to_vec()
    })?;
    let positions = gpu.constant(&format!("fft/{rows}/{cols}/positions"), || {
        let all: Vec<u32> = [rows, cols]
            .into_iter()
            .flat_map(|n| fft::digit_reversed(&radices(n)))
            .collect();
        bytemuck::cast_slice(&all).to_vec()
    })?;
    Ok((constants, [twiddles, positions]))
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
    gpu: &GpuDevice,
    x: &Tensor,
    shape: [usize; 2],
    direction: fft::FftDirection,
    out: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "so3::fft2";
    let (constants, [twiddles, positions]) = fft_shape(gpu, shape)?;
    let kernel = gpu.kernel_with(&FFT2, &[("input", x.dtype())], &constants)?;
    let size = 2 * shape[0] * shape[1];
    let limits = gpu.binding;
    let mut launches = Vec::new();
    for (g0, grids) in row_blocks(OP, "x", x.shape()[0], size, &limits)? {
        let (first, count) = ((g0 * size) as u64, (grids * size) as u64);
        let wi = limits.window_of(OP, "x", x.dtype(), first, count, x.buffer().size())?;
        let wo = limits.window(OP, "output", first, count, out.size())?;
        let uniform = gpu.uniform(&Fft2Params {
            grids: grids as u32,
            inverse: (direction == fft::FftDirection::Inverse) as u32,
            input_offset: wi.skip,
            output_offset: wo.skip,
        })?;
        launches.push((uniform, wi, wo, grids as u32));
    }
    gpu.submit(|encoder| {
        for (uniform, wi, wo, groups) in &launches {
            let resources = [
                uniform.buffer().as_entire_binding(),
                binding(x.buffer(), wi),
                twiddles.buffer().as_entire_binding(),
                positions.buffer().as_entire_binding(),
                binding(out, wo),
            ];
            gpu.dispatch(encoder, &kernel, &resources, *groups);
        }
        Ok(())
    })
}

const GAUNT_FOURIER: Shader = shader!("so3/gaunt_fourier.wgsl");

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
}

/// Whether one product's FFT grid fits the workgroup array of fft.inc.wgsl.
pub(super) fn fourier_fits(plan: &FourierPlan) -> bool {
    plan.n_u * plan.n_v <= fft::FFT_CAPACITY
}

/// The Gaunt product by the 2D-Fourier route, one workgroup (one FFT grid) per row.
pub(super) fn gaunt_fourier(
    gpu: &GpuDevice,
    plan: &FourierPlan,
    [x1, x2]: [&Tensor; 2],
    channels: usize,
    broadcast: bool,
    out: &wgpu::Buffer,
) -> Result<()> {
    const OP: &str = "so3::gaunt_product (Fourier)";
    let (constants, [twiddles, positions]) = fft_shape(gpu, [plan.n_u, plan.n_v])?;
    let operands = [("x1", x1.dtype()), ("x2", x2.dtype())];
    let kernel = gpu.kernel_with(&GAUNT_FOURIER, &operands, &constants)?;
    let key = format!("gaunt_fourier/{}/{}/{}", plan.l1, plan.l2, plan.lmax_out);
    // t^{lm}_u, then K^{lm}_u with the ½ of the real part and the FFTs' n_u·n_v folded in.
    let scale = 0.5 / (plan.n_u * plan.n_v) as f64;
    let tables = gpu.constant(&key, || {
        let theta = plan.theta.iter().map(|z| [z.re as f32, z.im as f32]);
        let projection = plan
            .projection()
            .into_iter()
            .map(|z| [(z.re * scale) as f32, (z.im * scale) as f32]);
        let all: Vec<[f32; 2]> = theta.chain(projection).collect();
        bytemuck::cast_slice(&all).to_vec()
    })?;
    let blocks = sample_blocks(
        gpu,
        OP,
        [x1, x2],
        channels,
        broadcast,
        dim(plan.lmax_out),
        out,
    )?;
    let buffers = [tables.buffer(), twiddles.buffer(), positions.buffer()];
    launch_products(
        gpu,
        &kernel,
        blocks,
        [x1, x2],
        &buffers,
        out,
        |rows, [w1, w2, wo]| {
            let params = FourierParams {
                rows: rows as u32,
                channels: channels as u32,
                broadcast: broadcast as u32,
                l1: plan.l1 as u32,
                l2: plan.l2 as u32,
                lmax_out: plan.lmax_out as u32,
                l_table: plan.l_table as u32,
                product_degree: (plan.l1 + plan.l2) as u32,
                projection_offset: plan.theta.len() as u32,
                x1_offset: w1.skip,
                x2_offset: w2.skip,
                out_offset: wo.skip,
            };
            (params, rows as u32)
        },
    )
}
