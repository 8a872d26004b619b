//! The spherical-grid route of the Gaunt product: its plan and f64 form ([`GridPlan`],
//! [`gaunt_grid`]) and its GPU launch.

pub(crate) mod kernel;
mod plan;

pub(crate) use plan::ring_factors;
pub use plan::{gaunt_grid, ring_product, GridPlan};
