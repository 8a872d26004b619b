//! GPU launches of the SO(3) kernels.

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
    let (table, starts) = recursion_table(lmax);
    let table = gpu.upload(bytemuck::cast_slice(&table))?;
    let starts = gpu.upload(bytemuck::cast_slice(&starts))?;
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
