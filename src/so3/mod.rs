//! SO(3): real spherical harmonics, Clebsch–Gordan and Gaunt tensor products, in e3nn-jax's
//! basis (index `l² + m + l`, component normalisation), each with an f64 CPU reference.
//!
//! Rooms, each above the ones it uses: `harmonics`, `rotation`, `products` (CG and Gaunt by
//! every route, with their tables, plans and gradients), `cp` (the CP-decomposed product) and
//! `linear`; below them all, the degrees and their checks, the Clebsch–Gordan coefficients,
//! the quadrature rules and the per-process table cache. [`reference`](mod@reference) gathers every f64
//! oracle.

mod clebsch_gordan;
mod cp;
mod degrees;
mod harmonics;
mod linear;
mod memo;
pub mod reference;
mod rotation;

// The machinery of the products (tables, plans, quadrature): public for the tests of this
// repository, which check each piece against the others; users call the functions below and
// the f64 oracles of `reference`.
#[doc(hidden)]
pub mod products;
#[doc(hidden)]
pub mod quadrature;

pub use products::fft;
#[doc(hidden)]
pub use products::{fourier, grid, Coefficients};

pub use clebsch_gordan::clebsch_gordan;
pub use cp::CpProduct;
pub use degrees::MAX_L;
pub use harmonics::{
    spherical_harmonics, spherical_harmonics_backward, spherical_harmonics_double_backward,
    HarmonicsSecondGrads,
};
pub use linear::{linear, linear_backward, linear_double_backward, LinearGrads, LinearSecondGrads};
pub use products::{
    cg_product, cg_product_backward, cg_product_double_backward, gaunt_product,
    gaunt_product_backward, gaunt_product_double_backward, paths, weighted_cg_product,
    weighted_cg_product_backward, weighted_cg_product_double_backward, GauntMethod, ProductGrads,
    ProductSecondGrads, WeightedGrads, WeightedSecondGrads,
};
pub use rotation::{rotate, wigner_d, Rotation};
