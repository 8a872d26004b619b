//! Helpers of the `burn` feature's tests.

use burn::tensor::Tensor as BurnTensor;
use wgkernels::burn::Bridge;
use wgkernels::GpuOptions;

/// A bridge on the best adapter, poisoning fresh outputs, or `None` (test skipped) where
/// there is no adapter — unless `WGKERNELS_REQUIRE_GPU=1`, where that fails the test.
pub fn bridge() -> Option<Bridge> {
    match Bridge::new(GpuOptions {
        poison_outputs: true,
        ..Default::default()
    }) {
        Ok(bridge) => Some(bridge),
        Err(e) if std::env::var("WGKERNELS_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("WGKERNELS_REQUIRE_GPU=1 but no bridge: {e}")
        }
        Err(_) => None,
    }
}

/// A burn tensor's f32 values, read back.
pub fn values<const D: usize>(t: BurnTensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}
