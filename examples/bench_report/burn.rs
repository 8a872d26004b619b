//! Peer rows (feature `burn`), on one device in one run: our kernels against burn/cubecl's own
//! — our GEMM against burn's autotuned `matmul`, our DoRA layer (forward + backward) against
//! burn's autodiff of the dense PEFT-style layer, our attention against the same formulas in
//! burn — and what calling ours through burn costs over calling them directly.
//!
//! Every burn-side time waits for burn's queue as well as ours (`Device::sync`), after warm-up
//! calls (cubecl autotunes its matmul on the first calls of a shape).

use burn::tensor::{Device, Tensor as BurnTensor, TensorData};
use rand::rngs::StdRng;
use rand::Rng;
use wgkernels::attention::{reference as attention_reference, Dims, FeatureMap};
use wgkernels::bench::{time_until, Timing};
use wgkernels::burn::Bridge;
use wgkernels::compare::{max_abs_error, relative_error};
use wgkernels::dora::{self, reference as dora_reference, LoraShape, NormGradient};
use wgkernels::linalg::{self, reference as gemm_reference, Gemm};
use wgkernels::{Context, Error, GpuOptions, Result};

use crate::report::{Bound, Report, Row};
use crate::uniform;

pub fn rows(_: &Context, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let bridge = Bridge::new(GpuOptions::default())?;
    gemm_rows(&bridge, rng, report)?;
    dora_rows(rng, report)?;
    attention_rows(&bridge, rng, report)
}

/// Times `call` waiting for burn's queue and ours, after three warm-up calls.
fn time(bridge: &Bridge, mut call: impl FnMut() -> Result<()>) -> Result<Timing> {
    let wait = || {
        bridge.device().sync().map_err(burn_error("sync"))?;
        bridge.context().synchronize()
    };
    for _ in 0..2 {
        call()?;
    }
    time_until(wait, 1.0, call)
}

fn burn_error<E: std::fmt::Debug>(what: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::Gpu(format!("burn's {what}: {e:?}"))
}

fn burn_tensor<const D: usize>(data: &[f32], shape: [usize; D], device: &Device) -> BurnTensor<D> {
    BurnTensor::from_data(TensorData::new(data.to_vec(), shape), device)
}

fn read<const D: usize>(t: BurnTensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(burn_error("read-back"))
}

fn overhead(through: f64, direct: f64) -> String {
    format!(
        "through burn {:+.1}% over the direct call",
        100.0 * (through / direct - 1.0)
    )
}

/// One side of a peer comparison: its row's kernel name, timing, error and notes.
struct Side {
    kernel: String,
    timing: Timing,
    error: Option<(f64, f64)>,
    notes: String,
}

/// burn's row, then ours with burn's time as its baseline (named `baseline`).
fn push_pair(
    report: &mut Report,
    (shape, bytes, flops): (String, f64, f64),
    baseline: &str,
    burn: Side,
    ours: Side,
) {
    let peer_seconds = burn.timing.median;
    for (side, baseline) in [
        (burn, None),
        (ours, Some((baseline.to_string(), peer_seconds))),
    ] {
        report.push(Row {
            kernel: side.kernel,
            shape: shape.clone(),
            timing: side.timing,
            bytes,
            flops,
            bound: Bound::Compute,
            baseline,
            error: side.error,
            form: String::new(),
            notes: side.notes,
        });
    }
}

fn gemm_rows(bridge: &Bridge, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let (ctx, device) = (bridge.context(), bridge.device());
    for size in [256usize, 1024] {
        let (m, k, n) = (size, size, size);
        let (a, b) = (uniform(rng, m * k), uniform(rng, k * n));
        let want =
            gemm_reference::matmul(&a, &b, Gemm::of("bench", &[m, k], &[k, n], false, false)?);
        let (ba, bb) = (
            burn_tensor(&a, [m, k], device),
            burn_tensor(&b, [k, n], device),
        );
        let (va, vb) = (bridge.view(ba.clone())?, bridge.view(bb.clone())?);
        let burns = time(bridge, || {
            drop(ba.clone().matmul(bb.clone()));
            Ok(())
        })?;
        let direct = time(bridge, || {
            linalg::matmul(ctx, &va, &vb, false, false).map(drop)
        })?;
        let through = time(bridge, || bridge.matmul(&ba, &bb, false, false).map(drop))?;
        let shape = format!("{m}×{k}×{n}");
        let (bytes, flops) = (
            ((m * k + k * n + m * n) * 4) as f64,
            2.0 * (m * k * n) as f64,
        );
        let error = |c: Vec<f32>| Some((relative_error(&c, &want), max_abs_error(&c, &want)));
        push_pair(
            report,
            (shape, bytes, flops),
            "burn `Tensor::matmul`",
            Side {
                kernel: "peer: burn `Tensor::matmul` (cubecl, autotuned)".into(),
                timing: burns,
                error: error(read(ba.clone().matmul(bb.clone()))?),
                notes: String::new(),
            },
            Side {
                kernel: "matmul (ours) on burn's device".into(),
                timing: direct,
                error: error(linalg::matmul(ctx, &va, &vb, false, false)?.to_vec()?),
                notes: overhead(through.median, direct.median),
            },
        );
    }
    Ok(())
}

/// The layer's inputs on a fresh bridge (so that its pool's high-water mark is this step's).
struct DoraStep {
    bridge: Bridge,
    x: BurnTensor<2>,
    w: BurnTensor<2>,
    a: BurnTensor<2>,
    b: BurnTensor<2>,
    m: BurnTensor<1>,
    dy: BurnTensor<2>,
}

const DORA_SCALE: f32 = 0.5;

impl DoraStep {
    fn new(data: &[Vec<f32>; 6], [n, d_out, d_in, r]: [usize; 4]) -> Result<DoraStep> {
        let bridge = Bridge::new(GpuOptions::default())?;
        let device = bridge.device().clone().autodiff();
        let t = |i: usize, shape: [usize; 2]| burn_tensor(&data[i], shape, &device);
        Ok(DoraStep {
            x: t(0, [n, d_in]).require_grad(),
            w: t(1, [d_out, d_in]),
            a: t(2, [r, d_in]).require_grad(),
            b: t(3, [d_out, r]).require_grad(),
            m: burn_tensor(&data[4], [d_out], &device).require_grad(),
            dy: t(5, [n, d_out]),
            bridge,
        })
    }

    /// Ours: forward and backward through burn's autodiff, gradients towards x, A, B, m.
    fn ours(&self) -> Result<BurnTensor<2>> {
        let y = self.bridge.dora_linear(
            &self.x,
            &self.w,
            &self.a,
            &self.b,
            &self.m,
            DORA_SCALE,
            NormGradient::Detached,
        )?;
        drop((y.clone() * self.dy.clone()).sum().backward());
        Ok(y)
    }

    /// PEFT's DoRA in burn tensor ops: `(m/‖W + s·B·A‖_row, detached) ⊙ (x·Wᵀ + s·(x·Aᵀ)·Bᵀ)`.
    fn dense(&self) -> BurnTensor<2> {
        let d_out = self.m.dims()[0];
        let (x, w, a, b) = (&self.x, &self.w, &self.a, &self.b);
        let base = x.clone().matmul(w.clone().transpose());
        let lora = x
            .clone()
            .matmul(a.clone().transpose())
            .matmul(b.clone().transpose());
        let merged = w.clone() + b.clone().matmul(a.clone()) * DORA_SCALE;
        let norm = merged
            .square()
            .sum_dim(1)
            .sqrt()
            .reshape([1, d_out])
            .detach();
        let y = (base + lora * DORA_SCALE) * (self.m.clone().reshape([1, d_out]) / norm);
        drop((y.clone() * self.dy.clone()).sum().backward());
        y
    }

    /// Bytes burn's pool reserved (its high-water mark) and ours allocated at most.
    fn reserved(&self) -> Result<u64> {
        let burn = self
            .bridge
            .device()
            .memory_pool_usage()
            .ok_or_else(|| Error::Gpu("burn reports no memory usage".into()))?
            .bytes_reserved;
        Ok(burn + self.bridge.context().peak_allocated_bytes())
    }
}

fn dora_rows(rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let [n, d_out, d_in, r] = [512usize, 1024, 1024, 64];
    let mut data = [
        n * d_in,
        d_out * d_in,
        r * d_in,
        d_out * r,
        d_out,
        n * d_out,
    ]
    .map(|len| uniform(rng, len));
    data[4] = (0..d_out).map(|_| rng.random_range(0.5..2.0)).collect();
    let want = dora_reference::forward(
        &data[0],
        &data[1],
        &data[2],
        &data[3],
        &data[4],
        LoraShape { d_out, d_in, r },
        DORA_SCALE as f64,
    );
    let error = |y: Vec<f32>| Some((relative_error(&y, &want), max_abs_error(&y, &want)));
    let inputs_bytes = (data.iter().map(Vec::len).sum::<usize>() * 4) as u64;
    let measure = |ours: bool| -> Result<(Timing, u64, Vec<f32>)> {
        let step = DoraStep::new(&data, [n, d_out, d_in, r])?;
        let y = if ours { step.ours()? } else { step.dense() };
        step.bridge.device().sync().map_err(burn_error("sync"))?;
        let transient = step.reserved()?.saturating_sub(inputs_bytes);
        let y = read(y.inner())?;
        let timing = time(&step.bridge, || {
            if ours {
                step.ours().map(drop)
            } else {
                drop(step.dense());
                Ok(())
            }
        })?;
        Ok((timing, transient, y))
    };
    let (dense, dense_bytes, dense_y) = measure(false)?;
    let (ours, ours_bytes, ours_y) = measure(true)?;
    // The same layer called directly (no burn graph) on the first step's device.
    let step = DoraStep::new(&data, [n, d_out, d_in, r])?;
    let views = [&step.x, &step.w, &step.a, &step.b]
        .map(|t| step.bridge.view(t.clone().inner()))
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let (m, dy) = (
        step.bridge.view(step.m.clone().inner())?,
        step.bridge.view(step.dy.clone().inner())?,
    );
    let ctx = step.bridge.context();
    let direct = time(&step.bridge, || {
        let (_, mut saved) = dora::forward_saved(
            ctx, &views[0], &views[1], &views[2], &views[3], &m, DORA_SCALE,
        )?;
        saved.backward(&dy, NormGradient::Detached).map(drop)
    })?;
    let shape = format!("n={n}, {d_out}×{d_in}, r={r}, forward + backward");
    let (nf, dout, din, rr) = (n as f64, d_out as f64, d_in as f64, r as f64);
    // Forward GEMMs and the norm's B·A, then the backward's ∂x, ∂A, ∂B (each twice the
    // forward's GEMM work for x, about as much again for the adapters).
    let flops =
        3.0 * 2.0 * (nf * dout * din + nf * din * rr + nf * rr * dout) + 2.0 * dout * rr * din;
    let bytes =
        (inputs_bytes + (n * d_out + n * d_in + r * d_in + d_out * r + d_out) as u64 * 4) as f64;
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    push_pair(
        report,
        (shape, bytes, flops),
        "burn dense DoRA",
        Side {
            kernel: "peer: burn autodiff of dense PEFT DoRA".into(),
            timing: dense,
            error: error(dense_y),
            notes: format!("transient {}", mb(dense_bytes)),
        },
        Side {
            kernel: "burn::Bridge::dora_linear (ours, saved forward)".into(),
            timing: ours,
            error: error(ours_y),
            notes: format!(
                "transient {} vs burn's {}; {}",
                mb(ours_bytes),
                mb(dense_bytes),
                overhead(ours.median, direct.median)
            ),
        },
    );
    Ok(())
}

/// An attention variant: its name, the formula in burn, ours through burn, the f64 output.
type Case<'a> = (
    &'a str,
    &'a dyn Fn() -> BurnTensor<4>,
    Box<dyn Fn() -> Result<BurnTensor<4>> + 'a>,
    Vec<f64>,
);

fn attention_rows(bridge: &Bridge, rng: &mut StdRng, report: &mut Report) -> Result<()> {
    let device = bridge.device().clone().autodiff();
    let d = 64;
    for n in [256usize, 1024] {
        let shape = [1, 1, n, d];
        let dims = Dims {
            heads: 1,
            n,
            dk: d,
            dv: d,
        };
        let data = [0; 4].map(|_| uniform(rng, n * d));
        let leaf = |i: usize| burn_tensor(&data[i], shape, &device).require_grad();
        let (q, k, v, dy) = (
            leaf(0),
            leaf(1),
            leaf(2),
            burn_tensor(&data[3], shape, &device),
        );
        let backward = |y: &BurnTensor<4>| drop((y.clone() * dy.clone()).sum().backward());
        for causal in [false, true] {
            let mask = || {
                BurnTensor::<2, burn::tensor::Bool>::tril_mask([n, n], 0, &device).unsqueeze::<4>()
            };
            // softmax_j(q·k/√d) v, and elu+1 linear attention Σ_j s_ij v_j / (Σ_j s_ij + ε),
            // both as burn writes them: n×n scores.
            let softmax = || {
                let mut s = q.clone().matmul(k.clone().swap_dims(2, 3)) / (d as f64).sqrt();
                if causal {
                    s = s.mask_fill(mask(), f32::NEG_INFINITY);
                }
                burn::tensor::activation::softmax(s, 3).matmul(v.clone())
            };
            let linear = || {
                let phi = |x: BurnTensor<4>| burn::tensor::activation::elu(x, 1.0) + 1.0;
                let mut s = phi(q.clone()).matmul(phi(k.clone()).swap_dims(2, 3));
                if causal {
                    s = s.mask_fill(mask(), 0.0);
                }
                s.clone().matmul(v.clone()) / (s.sum_dim(3) + 1e-6)
            };
            let cases: [Case; 2] = [
                (
                    "softmax",
                    &softmax,
                    Box::new(|| bridge.softmax_attention(&q, &k, &v, causal)),
                    attention_reference::softmax(&data[0], &data[1], &data[2], dims, causal),
                ),
                (
                    "linear elu+1",
                    &linear,
                    Box::new(|| {
                        bridge.linear_attention(&q, &k, &v, FeatureMap::EluPlusOne, causal)
                    }),
                    attention_reference::linear(
                        &data[0],
                        &data[1],
                        &data[2],
                        dims,
                        FeatureMap::EluPlusOne,
                        causal,
                    ),
                ),
            ];
            for (name, formula, ours, want) in cases {
                let error = |y: BurnTensor<4>| -> Result<_> {
                    let y = read(y.inner())?;
                    Ok(Some((relative_error(&y, &want), max_abs_error(&y, &want))))
                };
                let burns = time(bridge, || {
                    backward(&formula());
                    Ok(())
                })?;
                let mine = time(bridge, || ours().map(|y| backward(&y)))?;
                let shape = format!("[1,1,{n},{d}], causal {causal}, forward + backward");
                let bytes = (7 * n * d * 4) as f64; // q, k, v, dy read; ∂q, ∂k, ∂v written
                let pairs = (n * n) as f64 * if causal { 0.5 } else { 1.0 };
                let flops = 3.0 * pairs * (4 * d) as f64;
                push_pair(
                    report,
                    (shape, bytes, flops),
                    &format!("burn {name}"),
                    Side {
                        kernel: format!("peer: burn autodiff of {name} attention (n×n scores)"),
                        timing: burns,
                        error: error(formula())?,
                        notes: String::new(),
                    },
                    Side {
                        kernel: format!("burn::Bridge {name} attention (ours)"),
                        timing: mine,
                        error: error(ours()?)?,
                        notes: String::new(),
                    },
                );
            }
        }
    }
    Ok(())
}
