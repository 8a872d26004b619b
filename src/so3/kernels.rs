//! GPU launches of the SO(3) kernels.

use super::products::ProductTable;
use super::reference::{dim, recursion};
use crate::gpu::dispatch::row_blocks;
use crate::gpu::{binding, shader, GpuDevice, Shader};
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

/// `out[s, c, :] = table(x1[s, c, :], x2[s, c or 0, :])` for `samples × channels` rows.
#[allow(clippy::too_many_arguments)]
pub(super) fn sparse_product(
    gpu: &GpuDevice,
    table_key: String,
    table: &ProductTable,
    x1: &Tensor,
    x2: &Tensor,
    samples: usize,
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
    let (d1, d2, d3) = (x1.shape()[2], x2.shape()[2], table.starts.len() - 1);
    let x2_rows_per_sample = if broadcast { 1 } else { channels };
    let limits = gpu.binding;
    let mut launches = Vec::new();
    // Blocks of whole samples, so that a broadcast x2 row stays with its channels.
    for (s0, ns) in row_blocks(OP, "x1", samples, channels * d1.max(d2).max(d3), &limits)? {
        let rows = ns * channels;
        let w1 = limits.window_of(
            OP,
            "x1",
            x1.dtype(),
            (s0 * channels * d1) as u64,
            (rows * d1) as u64,
            x1.buffer().size(),
        )?;
        let w2 = limits.window_of(
            OP,
            "x2",
            x2.dtype(),
            (s0 * x2_rows_per_sample * d2) as u64,
            (ns * x2_rows_per_sample * d2) as u64,
            x2.buffer().size(),
        )?;
        let wo = limits.window(
            OP,
            "output",
            (s0 * channels * d3) as u64,
            (rows * d3) as u64,
            out.size(),
        )?;
        let uniform = gpu.uniform(&ProductParams {
            rows: rows as u32,
            d1: d1 as u32,
            d2: d2 as u32,
            d3: d3 as u32,
            group: if broadcast { channels as u32 } else { 1 },
            x1_offset: w1.skip,
            x2_offset: w2.skip,
            out_offset: wo.skip,
        })?;
        launches.push((uniform, [w1, w2, wo], rows.div_ceil(PRODUCT_ROWS) as u32));
    }
    gpu.submit(|encoder| {
        for (uniform, [w1, w2, wo], groups) in &launches {
            let resources = [
                uniform.buffer().as_entire_binding(),
                binding(x1.buffer(), w1),
                binding(x2.buffer(), w2),
                terms.buffer().as_entire_binding(),
                starts.buffer().as_entire_binding(),
                binding(out, wo),
            ];
            gpu.dispatch(encoder, &kernel, &resources, *groups);
        }
        Ok(())
    })
}
