//! The CPU references of the SO(3) kernels, in f64: each room's own, gathered here so that
//! tests and users find every oracle in one place.

pub use super::degrees::dim;
pub use super::harmonics::reference::{
    spherical_harmonics, spherical_harmonics_backward, spherical_harmonics_backward_f64,
    spherical_harmonics_double_backward, spherical_harmonics_f64,
};
pub use super::linear::reference::{linear, linear_weight_gradient};
pub use super::rotation::wigner::{rotate_coefficients, rotate_vector, wigner_d};
