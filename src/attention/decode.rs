//! Recurrent linear attention: one token at a time, for decoding.

use super::reference::{self, feature_len, State};
use super::FeatureMap;
use crate::gpu::pool::PooledBuffer;
use crate::gpu::{shader, Bound, Operand, Shader};
use crate::op::{self, Resident};
use crate::{Context, Error, Result, Tensor};

const DECODE_STEP: Shader = shader!("attention/decode_step.wgsl");
/// Columns per workgroup of decode_step.wgsl.
const COLUMNS: usize = 256;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct StepParams {
    heads: u32,
    dk: u32,
    dv: u32,
    features: u32,
    norm_aware: u32,
    count: u32,
    col_blocks: u32,
    eps: f32,
}

/// Two copies of every head's `[features][dv + 1]` state and key-scale exponent on the
/// device: a step reads one and writes the other (`current` is the one holding the state).
struct DeviceHeads {
    states: [PooledBuffer; 2],
    len: usize,
    current: usize,
}

/// Every head's state: f64 on the CPU path, on the device on the GPU path.
type Heads = Resident<Vec<State>, DeviceHeads>;

/// The state of causal linear attention for every (batch, head), advanced one token at a
/// time in O(features·dv) per head: after t steps, [`step`](Self::step) returns what
/// [`linear`](super::linear) with `causal = true` returns at position t.
///
/// ```
/// use wgkernels::attention::{FeatureMap, LinearDecoder};
/// use wgkernels::Context;
/// # fn main() -> wgkernels::Result<()> {
/// let ctx = Context::new()?;
/// let mut decoder = LinearDecoder::new(&ctx, 1, 2, 4, 3, FeatureMap::NormAware)?;
/// let q = ctx.tensor(&[0.5; 8], &[1, 2, 4])?; // [batch, heads, dk]
/// let v = ctx.tensor(&[1.0; 6], &[1, 2, 3])?; // [batch, heads, dv]
/// let out = decoder.step(&q, &q, &v)?;        // [batch, heads, dv]
/// // One token: the output is its value, up to ε / s = 1e-6 / 0.037.
/// assert!(out.to_vec()?.iter().all(|x| (x - 1.0).abs() < 1e-4));
/// assert_eq!(decoder.position(), 1);
/// # Ok(())
/// # }
/// ```
pub struct LinearDecoder {
    ctx: Context,
    map: FeatureMap,
    batch: usize,
    heads: usize,
    dk: usize,
    dv: usize,
    position: usize,
    state: Heads,
}

impl LinearDecoder {
    /// An empty state (no tokens seen) for `batch × heads` heads of key width `dk` and value
    /// width `dv`.
    pub fn new(
        ctx: &Context,
        batch: usize,
        heads: usize,
        dk: usize,
        dv: usize,
        map: FeatureMap,
    ) -> Result<LinearDecoder> {
        const OP: &str = "attention::LinearDecoder::new";
        let _call = crate::call::Call::enter(OP);
        for (arg, value) in [("batch", batch), ("heads", heads), ("dk", dk), ("dv", dv)] {
            if value == 0 {
                return Err(Error::InvalidArgument {
                    op: OP,
                    arg,
                    message: "must be at least 1".into(),
                });
            }
        }
        // Checked: batch·heads and the state's size must not wrap (1 << 40 × 1 << 30 would).
        let count = crate::tensor::element_count(OP, "batch", &[batch, heads])?;
        let per_head = feature_len(map, dk)
            .checked_mul(dv + 1)
            .and_then(|x| x.checked_add(1))
            .ok_or_else(|| too_many(OP, "dk"))?;
        let len = count
            .checked_mul(per_head)
            .ok_or_else(|| too_many(OP, "batch"))?;
        let state = Heads::new(
            ctx,
            || {
                // The f64 state, 8 bytes an entry: a request the allocator refuses is an Err
                // here rather than an abort while the states are built.
                op::reserve(OP, "batch", len)?;
                Ok(vec![State::new(map, dk, dv); count])
            },
            |gpu| {
                let states = [
                    gpu.storage_bytes(len as u64 * 4)?,
                    gpu.storage_bytes(len as u64 * 4)?,
                ];
                gpu.binding
                    .bind_all(OP, &[Operand::fixed("state", states[0].buffer(), len)])?;
                let mut recording = gpu.recording();
                recording.clear(states[0].buffer());
                recording.submit()?;
                Ok(DeviceHeads {
                    states,
                    len,
                    current: 0,
                })
            },
        )?;
        Ok(LinearDecoder {
            ctx: ctx.clone(),
            map,
            batch,
            heads,
            dk,
            dv,
            position: 0,
            state,
        })
    }

    /// Tokens seen so far.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Pushes one token per head and returns its output:
    /// `S ← S + φ_k(k)vᵀ`, `z ← z + φ_k(k)`, `out = φ_q(q)ᵀS / (φ_q(q)·z + ε)`.
    /// `q`, `k`: `[batch, heads, dk]`; `v`: `[batch, heads, dv]`; returns `[batch, heads, dv]`.
    /// On `Err` the state is unchanged. A NaN in a token stays in its head's state.
    pub fn step(&mut self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        const OP: &str = "attention::LinearDecoder::step";
        let _call = crate::call::Call::enter(OP);
        let (b, h, dk, dv) = (self.batch, self.heads, self.dk, self.dv);
        for (arg, t, d) in [("q", q, dk), ("k", k, dk), ("v", v, dv)] {
            self.ctx.check_owns(OP, arg, t)?;
            if t.shape() != [b, h, d] {
                return Err(Error::Shape {
                    op: OP,
                    message: format!(
                        "`{arg}` must be [batch, heads, {}] = [{b}, {h}, {d}], got {:?}",
                        if arg == "v" { "dv" } else { "dk" },
                        t.shape()
                    ),
                });
            }
        }
        let (map, count) = (self.map, self.position + 1);
        let ctx = &self.ctx;
        let out = self.state.with_mut(
            ctx,
            |heads| {
                let mut out = Vec::with_capacity(b * h * dv);
                for (i, state) in heads.iter_mut().enumerate() {
                    state.push(
                        &k.host()[i * dk..(i + 1) * dk],
                        &v.host()[i * dv..(i + 1) * dv],
                    );
                    out.extend(state.query(&q.host()[i * dk..(i + 1) * dk]));
                }
                ctx.host_result(out, &[b, h, dv])
            },
            |heads, gpu| {
                let out = gpu.output(&[b, h, dv])?;
                let operands = Tensor::operands(["q", "k", "v"], [q, k, v]);
                let kernel = gpu.kernel_for(&DECODE_STEP, &operands)?;
                let col_blocks = (dv + 1).div_ceil(COLUMNS);
                let params = StepParams {
                    heads: (b * h) as u32,
                    dk: dk as u32,
                    dv: dv as u32,
                    features: feature_len(map, dk) as u32,
                    norm_aware: (map == FeatureMap::NormAware) as u32,
                    count: count as u32,
                    col_blocks: col_blocks as u32,
                    eps: reference::EPS as f32,
                };
                let [read, written] = [heads.current, 1 - heads.current];
                let [wq, wk, wv, wo, from, to] = gpu.binding.bind_all(
                    OP,
                    &[
                        q.all("q"),
                        k.all("k"),
                        v.all("v"),
                        out.all("out"),
                        Operand::fixed("state", heads.states[read].buffer(), heads.len),
                        Operand::fixed("state", heads.states[written].buffer(), heads.len),
                    ],
                )?;
                let mut recording = gpu.recording();
                let bindings: [Bound<'_>; 6] = [wq, wk, wv, from, to, wo];
                recording.dispatch(&kernel, &params, &bindings, (b * h * col_blocks) as u32)?;
                recording.submit()?;
                heads.current = written;
                Ok(out)
            },
        )?;
        self.position += 1;
        Ok(out)
    }
}

/// The error of a size whose product overflows memory.
fn too_many(op: &'static str, arg: &'static str) -> Error {
    Error::TooLarge {
        op,
        arg,
        bytes: u64::MAX,
        limit: isize::MAX as u64,
    }
}
