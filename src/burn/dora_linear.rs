//! [`DoraLinear`]: a DoRA-adapted linear layer as a burn module, its forward and backward ours.

use ::burn::module::{Module, Param};
use ::burn::tensor::Tensor as BurnTensor;

use super::Bridge;
use crate::dora::peft::AdapterLayer;
use crate::dora::NormGradient;
use crate::Result;

/// `y = m/‖W + s·B·A‖_row ⊙ (x·Wᵀ + s·(x·Aᵀ)·Bᵀ)` (+ bias) with W frozen and A, B, m trained
/// by burn's optimizers: where burn's `nn::Linear` stands, on a [`Bridge`]'s device.
///
/// Shapes are PEFT's: `weight [d_out, d_in]` (burn's `nn::Linear` keeps the transpose, so
/// [`from_linear`](Self::from_linear) transposes it), `lora_a [r, d_in]`, `lora_b [d_out, r]`,
/// `magnitude [d_out]`. At creation `B = 0` and `m = ‖W‖_row`, so the layer starts as the
/// base layer.
#[derive(Module, Debug)]
pub struct DoraLinear {
    /// The frozen base weight `[d_out, d_in]`.
    pub weight: Param<BurnTensor<2>>,
    /// The optional frozen bias `[d_out]`.
    pub bias: Option<Param<BurnTensor<1>>>,
    /// `A [r, d_in]`.
    pub lora_a: Param<BurnTensor<2>>,
    /// `B [d_out, r]`.
    pub lora_b: Param<BurnTensor<2>>,
    /// `m [d_out]`.
    pub magnitude: Param<BurnTensor<1>>,
    /// The scale `s` (PEFT's `lora_alpha / r`).
    #[module(skip)]
    pub scale: f32,
    /// Whether the norm is differentiated ([`NormGradient::Exact`]) or held, as PEFT does.
    #[module(skip)]
    pub norm: NormGradient,
    /// The bridge whose kernels run the layer.
    #[module(skip)]
    pub bridge: Bridge,
}

impl DoraLinear {
    /// A DoRA layer on the base weight `weight [d_out, d_in]` (and `bias`), of rank `r`:
    /// `A` drawn uniformly in ±1/√d_in (as a Kaiming-uniform init), `B = 0`, `m = ‖W‖_row`.
    pub fn new(
        bridge: &Bridge,
        weight: BurnTensor<2>,
        bias: Option<BurnTensor<1>>,
        r: usize,
        scale: f32,
        norm: NormGradient,
    ) -> DoraLinear {
        // Leaves of their own: the weight may come out of a trained (tracked) layer.
        let weight = weight.detach();
        let bias = bias.map(|b| b.detach());
        let [d_out, d_in] = weight.dims();
        let device = weight.device();
        let bound = 1.0 / (d_in as f64).sqrt();
        let a = BurnTensor::<2>::random(
            [r, d_in],
            ::burn::tensor::Distribution::Uniform(-bound, bound),
            &device,
        );
        let b = BurnTensor::<2>::zeros([d_out, r], &device);
        let magnitude = weight
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .reshape([d_out]);
        DoraLinear {
            weight: Param::from_tensor(weight).set_require_grad(false),
            bias: bias.map(|b| Param::from_tensor(b).set_require_grad(false)),
            lora_a: Param::from_tensor(a),
            lora_b: Param::from_tensor(b),
            magnitude: Param::from_tensor(magnitude),
            scale,
            norm,
            bridge: bridge.clone(),
        }
    }

    /// A DoRA layer over burn's `nn::Linear` (whose weight is `[d_in, d_out]`).
    pub fn from_linear(
        bridge: &Bridge,
        linear: &::burn::nn::Linear,
        r: usize,
        scale: f32,
        norm: NormGradient,
    ) -> DoraLinear {
        let weight = linear.weight.val().transpose();
        let bias = linear.bias.as_ref().map(|b| b.val());
        DoraLinear::new(bridge, weight, bias, r, scale, norm)
    }

    /// The layer on `x [n, d_in]` → `[n, d_out]`; `Err` for shapes that do not fit.
    pub fn forward(&self, x: BurnTensor<2>) -> Result<BurnTensor<2>> {
        let y = self.bridge.dora_linear(
            &x,
            &self.weight.val(),
            &self.lora_a.val(),
            &self.lora_b.val(),
            &self.magnitude.val(),
            self.scale,
            self.norm,
        )?;
        Ok(match &self.bias {
            Some(bias) => y + bias.val().unsqueeze::<2>(),
            None => y,
        })
    }

    /// The trained adapter as one layer of a PEFT adapter file ([`peft::save`](crate::dora::peft::save)),
    /// under the base model's module path `module`.
    pub fn adapter(&self, module: &str) -> Result<AdapterLayer> {
        let value = |t: BurnTensor<2>| self.bridge.view(t);
        Ok(AdapterLayer {
            module: module.to_string(),
            a: value(self.lora_a.val())?,
            b: value(self.lora_b.val())?,
            magnitude: self.bridge.view(self.magnitude.val())?,
        })
    }
}
