//! Running a property: the two contexts, proptest's configuration, and the comparison of a
//! call on the CPU path with the same call on the GPU.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::sync::LazyLock;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use wgkernels::{Context, Result, Tensor};

use crate::common;

/// Cases per function where `PROPTEST_CASES` is not set.
const CASES: u32 = 24;
/// Shrinking steps (calls on both paths) where `PROPTEST_MAX_SHRINK_ITERS` is not set;
/// proptest's default, 4 per case, leaves too few for the values once the layout has shrunk.
const SHRINK_ITERS: u32 = 1024;

/// The CPU context and the GPU one, made once for every test of the binary (`None`: no
/// adapter, the tests skip — unless `WGKERNELS_REQUIRE_GPU=1`).
static CONTEXTS: LazyLock<Option<[Context; 2]>> =
    LazyLock::new(|| common::gpu().map(|gpu| [Context::cpu(), gpu]));

pub fn contexts() -> Option<&'static [Context; 2]> {
    CONTEXTS.as_ref()
}

/// Proptest's configuration from its environment variables (`PROPTEST_CASES`,
/// `PROPTEST_RNG_SEED`, `PROPTEST_MAX_SHRINK_ITERS`, ...), with this file's defaults.
fn config() -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = CASES;
    }
    if std::env::var_os("PROPTEST_MAX_SHRINK_ITERS").is_none() {
        config.max_shrink_iters = SHRINK_ITERS;
    }
    config
}

/// Runs `test` on cases from `strategy`; a failure panics with the minimal failing case.
/// Failing seeds are kept where proptest keeps them, in `tests/proptest-regressions/`
/// beside the caller's file, and replayed first.
#[track_caller]
pub fn check<S: Strategy>(strategy: S, test: impl Fn(&Paths, S::Value) -> TestResult) {
    let source = Location::caller().file();
    let Some(ctx) = contexts() else { return };
    let mut config = config();
    config.source_file = Some(source);
    let paths = Paths {
        ctx,
        tally: RefCell::default(),
    };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, |case| test(&paths, case)) {
        panic!("{e}\n{runner}");
    }
    for (name, ok, err) in paths.tally.borrow().iter() {
        eprintln!(
            "{name}: {} cases, {ok} Ok on both paths, {err} Err on both",
            ok + err
        );
    }
}

pub type TestResult = std::result::Result<(), TestCaseError>;

/// The two paths, and how many calls each function had that both answered `Ok` or `Err`.
pub struct Paths {
    ctx: &'static [Context; 2],
    tally: RefCell<Vec<(String, usize, usize)>>,
}

impl Paths {
    pub fn cpu(&self) -> &Context {
        &self.ctx[0]
    }

    fn tally(&self, label: &str, ok: bool) {
        let mut t = self.tally.borrow_mut();
        let at = match t.iter().position(|e| e.0 == label) {
            Some(at) => at,
            None => {
                t.push((label.to_string(), 0, 0));
                t.len() - 1
            }
        };
        if ok {
            t[at].1 += 1;
        } else {
            t[at].2 += 1;
        }
    }

    /// Runs `call` on both paths and checks the properties; `call` returns the outputs'
    /// values:
    /// - no panic;
    /// - both paths give `Ok`, or both `Err`;
    /// - unless `extreme`, `Ok` outputs agree to 1e-3 relative L2.
    pub fn both(
        &self,
        label: &str,
        extreme: bool,
        call: &dyn Fn(&Context) -> Result<Vec<Vec<f32>>>,
    ) -> TestResult {
        let run = |c: &Context| {
            catch_unwind(AssertUnwindSafe(|| call(c))).map_err(|panic| {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                TestCaseError::fail(format!("{label}: panicked on {}: {why}", c.device_name()))
            })
        };
        let (cpu, gpu) = (run(&self.ctx[0])?, run(&self.ctx[1])?);
        self.tally(label, cpu.is_ok() && gpu.is_ok());
        match (&cpu, &gpu) {
            (Ok(a), Ok(b)) => {
                if extreme {
                    return Ok(());
                }
                for (i, (a, b)) in a.iter().zip(b).enumerate() {
                    if a.len() != b.len() {
                        return Err(TestCaseError::fail(format!(
                            "{label}: output {i} lengths differ: CPU {}, GPU {}",
                            a.len(),
                            b.len()
                        )));
                    }
                    if a.is_empty() {
                        continue;
                    }
                    // Relative to ‖cpu‖, or to 1% of the norm of an output of unit entries where
                    // the output is smaller than that: outputs that cancel to ~0 (the norm-aware
                    // ∂q at dk = 1, ∂q at n = 1) are rounding on both paths, compared absolutely.
                    let diff = a
                        .iter()
                        .zip(b.iter())
                        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    let norm = a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
                    let e = diff / norm.max(1e-2 * (a.len() as f64).sqrt());
                    // A NaN gap fails too, as `assert!(e < 1e-3)` did.
                    if e.is_nan() || e >= 1e-3 {
                        return Err(TestCaseError::fail(format!(
                            "{label}: output {i} differs between the paths by {e:e}"
                        )));
                    }
                }
                Ok(())
            }
            (Err(_), Err(_)) => Ok(()),
            _ => Err(TestCaseError::fail(format!(
                "{label}: the paths disagree: CPU {:?}, GPU {:?}",
                cpu.as_ref().map(|_| "Ok"),
                gpu.as_ref().map(|_| "Ok")
            ))),
        }
    }
}

/// A tensor's values, or its error.
pub fn values(t: Result<Tensor>) -> Result<Vec<f32>> {
    t?.to_vec()
}
