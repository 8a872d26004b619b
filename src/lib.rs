//! # wgkernels
//!
//! GPU compute kernels written in WGSL and run through wgpu on any Vulkan, Metal or DX12
//! GPU, for four families of operations from recent papers: fused DoRA weight norms, SO(3)
//! tensor products, M-FAC inverse-Hessian-vector products and linear attention.
//!
//! Every operation has two paths computing the same function: a GPU path (WGSL) and a CPU
//! reference path (plain Rust, accumulating in f64). A [`Context`] picks one: the best GPU
//! adapter when there is one, else the CPU path.
//!
//! ```
//! use wgkernels::{linalg, Context};
//! # fn main() -> wgkernels::Result<()> {
//! let ctx = Context::new()?; // GPU when there is one, else the CPU reference path
//! let a = ctx.tensor(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
//! let b = ctx.tensor(&[1.0, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2])?;
//! let c = linalg::matmul(&ctx, &a, &b, false, false)?; // [2, 2]
//! assert_eq!(c.to_vec()?, vec![4.0, 5.0, 10.0, 11.0]);
//! # Ok(())
//! # }
//! ```

pub mod attention;
#[cfg(feature = "burn")]
pub mod burn;
// Timing, error measures and device ceilings serve the tests, benches and examples of this
// repository; they are public for them, not part of the library's surface.
#[doc(hidden)]
pub mod bench;
mod call;
#[doc(hidden)]
pub mod compare;
mod context;
pub mod dora;
mod dtype;
mod error;
mod gpu;
pub mod graph;
pub mod linalg;
pub mod mfac;
mod op;
#[doc(hidden)]
pub mod roofline;
pub mod so3;
mod tensor;

pub use context::{Context, MemoryStats};
pub use dtype::DType;
pub use error::{Error, Result};
pub use gpu::{GpuOptions, Tuning};
pub use tensor::Tensor;
/// The wgpu this crate is built on, for [`Context::from_wgpu`] and [`Context::device_type`].
pub use wgpu;

/// The examples of README.md, compiled and run as doctests so that the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
