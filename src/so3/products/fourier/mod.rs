//! The 2D-Fourier route of the Gaunt product: its plan and f64 form ([`FourierPlan`],
//! [`gaunt_fourier`]) and its GPU launch.

pub(crate) mod kernel;
mod plan;

pub use plan::{convolve, convolve_fft, gaunt_fourier, FourierPlan};
