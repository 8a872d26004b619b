//! The GEMM's forms: each a shader, its override constants and the tile of C one workgroup
//! computes; and the uniforms they share.

pub(crate) use super::epilogue::Epilogue;
use super::rows::RowsTile;
use crate::gpu::{shader, Shader};

/// Edge of the tiled kernel's square tile of C (`matmul.inc.wgsl`).
pub(super) const TILE: usize = 64;
/// K-step of the tiled kernel; k-blocks are cut at multiples of it.
pub(super) const K_STEP: usize = 16;

const TILED: Shader = shader!("linalg/matmul.wgsl");
const TILED_ROW_SQUARES: Shader = shader!("linalg/matmul_row_squares.wgsl");
const TILED_SHIFTED_SQUARES: Shader = shader!("linalg/matmul_shifted_row_squares.wgsl");
const NAIVE: Shader = shader!("linalg/matmul_naive.wgsl");

/// The sizes of the register-blocked form the tuner chooses among (rows × vec4 columns per
/// lane × lanes), from the largest tile (32 × 512) to one that suits narrow products.
pub(crate) const ROWS_TILES: [RowsTile; 3] = [
    RowsTile {
        rows: 32,
        vecs: 8,
        threads: 16,
    },
    RowsTile {
        rows: 16,
        vecs: 4,
        threads: 16,
    },
    RowsTile {
        rows: 8,
        vecs: 2,
        threads: 16,
    },
];

/// A form of the GEMM, as the tuner names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GemmForm {
    /// 64×64 tiles of C through workgroup memory, 4×4 per thread (`matmul.wgsl`): the GPU form.
    Tiled,
    /// Register-blocked rows (`matmul_rows.wgsl`): the CPU-adapter form.
    Rows(RowsTile),
    /// One thread per output: the baseline.
    Naive,
}

impl GemmForm {
    /// Every form the tuner may choose for `matmul` and `matmul_row_squares`.
    pub(crate) fn tunable() -> impl Iterator<Item = GemmForm> {
        std::iter::once(GemmForm::Tiled).chain(ROWS_TILES.into_iter().map(GemmForm::Rows))
    }

    /// `"tiled"`, `"rows32x8x16"`, `"naive"`.
    pub(crate) fn name(&self) -> String {
        match self {
            GemmForm::Tiled => "tiled".into(),
            GemmForm::Rows(t) => format!("rows{}x{}x{}", t.rows, t.vecs, t.threads),
            GemmForm::Naive => "naive".into(),
        }
    }

    pub(crate) fn named(name: &str) -> Option<GemmForm> {
        GemmForm::tunable().find(|form| form.name() == name)
    }

    /// The kernel of this form with `epilogue` (the naive form only stores).
    pub(super) fn kernel(&self, epilogue: Epilogue) -> GemmKernel {
        match *self {
            GemmForm::Tiled => GemmKernel {
                shader: match epilogue {
                    Epilogue::Store => TILED,
                    Epilogue::RowSquares => TILED_ROW_SQUARES,
                    Epilogue::ShiftedSquares => TILED_SHIFTED_SQUARES,
                },
                constants: match epilogue {
                    Epilogue::RowSquares => vec![("ROW_SQUARES", 1.0)],
                    _ => Vec::new(),
                },
                tile: [TILE, TILE],
                k_step: K_STEP,
                splits_k: true,
                reads_a4: false,
            },
            GemmForm::Rows(tile) => GemmKernel {
                shader: tile.shader(epilogue),
                constants: tile.constants().to_vec(),
                tile: [tile.rows as usize, tile.columns()],
                // Blocks and slices of k cut at multiples of 4 keep op(A)'s vec4 loads aligned.
                k_step: 4,
                splits_k: true,
                reads_a4: true,
            },
            GemmForm::Naive => GemmKernel {
                shader: NAIVE,
                constants: Vec::new(),
                tile: [16, 16],
                k_step: 1,
                splits_k: false,
                reads_a4: false,
            },
        }
    }
}

/// A GEMM shader ready to launch: its override constants and the `[rows, columns]` tile of C
/// that one workgroup computes.
pub(super) struct GemmKernel {
    pub shader: Shader,
    pub constants: Vec<(&'static str, f64)>,
    pub tile: [usize; 2],
    /// k-blocks are cut at multiples of this.
    pub k_step: usize,
    /// Whether the kernel walks split-K slices (the naive one does not).
    pub splits_k: bool,
    /// Whether the kernel also binds op(A) as vec4s, after its other bindings (the rows form;
    /// see [`bind_a4`](super::launch::bind_a4)).
    pub reads_a4: bool,
}

/// Uniforms of every GEMM shader (`gemm_operands.inc.wgsl`).
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
    /// The rows form reads op(A) four k at a time through its vec4 binding.
    pub a_vec4: u32,
    pub _pad: u32,
}
