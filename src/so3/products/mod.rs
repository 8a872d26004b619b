//! The tensor products of coefficient rows: Clebsch–Gordan (weighted by path or not) and
//! Gaunt (direct, on a spherical grid, or by 2D Fourier series and FFT), and their gradients.
//!
//! Below the public functions (`forward`, `backward`) each route has its plan or table
//! (`tables`, `grid`, `fourier`, `fft`), its f64 form and its GPU launch; `sparse` runs a
//! sparse product on either path and `launch` cuts any product kernel into binding-sized
//! blocks. This module also re-exports the tables and their f64 application, for the tests.

mod args;
mod backward;
mod bilinear;
pub mod fft;
mod forward;
pub mod fourier;
pub mod grid;
mod launch;
mod reference;
mod second;
mod sparse;
mod tables;

pub(crate) use args::product_args;
pub use backward::{
    cg_product_backward, gaunt_product_backward, weighted_cg_product_backward, ProductGrads,
    WeightedGrads,
};
pub use forward::{cg_product, gaunt_product, weighted_cg_product, GauntMethod};
pub use reference::{apply, apply_weighted, path_gradient, Weights};
pub use second::{
    cg_product_double_backward, gaunt_product_double_backward, weighted_cg_product_double_backward,
    ProductSecondGrads, WeightedSecondGrads,
};
pub use tables::{
    grouped, path_table, paths, product_table, Coefficients, Grouping, PathTable, ProductTable,
};
