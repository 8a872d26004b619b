//! SO(3): real spherical harmonics and Clebsch–Gordan coefficients in e3nn-jax's basis.
//!
//! This session lands the CPU side (coefficients and the f64 reference, calibrated on
//! e3nn-jax values); the GPU kernels and tensor products follow.

pub mod cg;
pub mod quadrature;
pub mod reference;

pub use cg::{clebsch_gordan, MAX_L};
