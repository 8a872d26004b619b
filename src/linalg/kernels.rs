//! The GEMM shaders, the edge of the tile of C each computes, and the uniforms they share.

use crate::gpu::{shader, Shader};

/// A GEMM shader and the edge of the square tile of C that one workgroup computes.
pub(super) struct GemmKernel {
    pub shader: Shader,
    pub tile: usize,
}

pub(super) const TILED: GemmKernel = GemmKernel {
    shader: shader!("linalg/matmul.wgsl"),
    tile: 64,
};
pub(super) const TILED_ROW_SQUARES: GemmKernel = GemmKernel {
    shader: shader!("linalg/matmul_row_squares.wgsl"),
    tile: 64,
};
pub(super) const NAIVE: GemmKernel = GemmKernel {
    shader: shader!("linalg/matmul_naive.wgsl"),
    tile: 16,
};
/// K-step of the tiled kernel; k-blocks are cut at multiples of it.
pub(super) const K_STEP: usize = 16;

/// Uniforms of both GEMM shaders.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Params {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub tiles_n: u32,
    pub a_offset: u32,
    pub a_stride_m: u32,
    pub a_stride_k: u32,
    pub accumulate: u32,
    pub b_offset: u32,
    pub b_stride_k: u32,
    pub b_stride_n: u32,
    pub total_tiles: u32,
    pub c_offset: u32,
    pub c_stride_m: u32,
    pub squares_offset: u32,
    pub squares: u32,
    pub splits: u32,
    pub k_chunk: u32,
    pub c_split_stride: u32,
    pub squares_split_stride: u32,
    pub e_offset: u32,
    pub scale: f32,
    pub _pad: [u32; 2],
}
