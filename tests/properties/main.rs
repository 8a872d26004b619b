//! Property test over the public functions of every family, on `proptest`: random shapes
//! (0, 1, odd, 33, and mismatched between arguments), degrees, dtypes and values. For each
//! call, on the CPU path and on the GPU:
//! - no panic (`catch_unwind`);
//! - both paths give `Ok`, or both `Err`;
//! - with ordinary values (uniform in ±1), `Ok` results agree to 1e-3 relative L2: the
//!   families' own tests hold 1e-5..1e-4 on their inputs, but random signs and sizes of 1
//!   make worse-conditioned calls (largest gaps seen over 1200 cases: 4.4e-4 for the exact
//!   DoRA backward's ∂A, 1.0e-4 for the norm-aware attention ∂k);
//! - arguments are now and then f16 or bf16: accepted or refused alike on both paths;
//! - a failed call leaves a stateful object (`SlidingInverse`, `Mfac`, `LinearDecoder`) as it
//!   was: its next valid use gives the same answer as on an untouched twin (`state`).
//!
//! Values are drawn ordinary, or (one case in 3) extreme: NaN, ±inf, ±0, ±1e±30 mixed in,
//! where only the first two properties are checked (f32 on the GPU and f64 on the CPU may
//! round an overflow differently).
//!
//! One test per public function, or per few that take the same arguments (forward and
//! backward, the forms of a DoRA norm), each drawing a `Case` (`strategies`): a layout
//! (sizes, degrees, scale, mismatches, dtypes, whether extreme) and then values for its
//! shapes. A failure shrinks the layout first, then the values (`layout_first`), and panics
//! with proptest's "minimal failing input": the smallest shapes, degrees and values found
//! that still fail, each argument named. `PROPTEST_CASES=<n>` runs n cases per function
//! (default 24); `PROPTEST_RNG_SEED`, `PROPTEST_MAX_SHRINK_ITERS` (default here 1024) and
//! proptest's other variables apply too; failing seeds are saved to
//! `tests/proptest-regressions/` and replayed first. The CPU and GPU contexts are made once
//! for the whole binary (`check`).

#[path = "../common/mod.rs"]
mod common;

mod check;
mod graph_attention;
mod layout_first;
mod linalg_dora;
mod mfac;
mod so3;
mod state;
mod strategies;

use wgkernels::attention::LinearDecoder;
use wgkernels::mfac::{Mfac, SlidingInverse, StaticInverse};
use wgkernels::{graph, Context, Tensor};

/// Contexts, tensors and the stateful objects may be shared with or sent to other threads.
#[test]
fn the_public_types_are_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Context>();
    both::<Tensor>();
    both::<graph::Index>();
    both::<SlidingInverse>();
    both::<StaticInverse>();
    both::<Mfac>();
    both::<LinearDecoder>();
}
