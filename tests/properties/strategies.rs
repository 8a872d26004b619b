//! What a case is drawn from: sizes, mismatches, dtypes, values, and the case itself.

use std::fmt;

use proptest::collection::vec;
use proptest::prelude::*;
use wgkernels::{Context, DType, Result, Tensor};

use crate::layout_first::layout_first;

/// A size: 0, 1 or 33 one time in ten each, else 1..=9. Shrinks within 1..=9, then to 1,
/// then to 0.
pub fn dim() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![
        1 => Just(0usize),
        1 => Just(1usize),
        7 => 1usize..10,
        1 => Just(33usize),
    ]
}

/// A batch or head count: [`dim`] at most 3.
pub fn small_dim() -> impl Strategy<Value = usize> + Clone {
    dim().prop_map(|d| d.min(3))
}

/// True one time in `n`; shrinks to false.
pub fn one_in(n: u32) -> prop::bool::Weighted {
    prop::bool::weighted(1.0 / n as f64)
}

/// A size as given, or now and then a neighbour of it (a mismatch the call must refuse).
#[derive(Clone, Copy, Debug)]
pub enum Near {
    Same,
    More,
    Less,
}

impl Near {
    pub fn of(self, size: usize) -> usize {
        match self {
            Near::Same => size,
            Near::More => size + 1,
            Near::Less => size.saturating_sub(1),
        }
    }
}

/// [`Near::Same`] six times in eight; shrinks to it.
pub fn near() -> impl Strategy<Value = Near> + Clone {
    prop_oneof![
        6 => Just(Near::Same),
        1 => Just(Near::More),
        1 => Just(Near::Less),
    ]
}

/// Mostly f32; one argument in 20 is f16 or bf16 (accepted by the operands that read half
/// precision, refused alike on both paths by the others). Shrinks to f32.
fn dtype() -> impl Strategy<Value = DType> + Clone {
    prop_oneof![
        38 => Just(DType::F32),
        1 => Just(DType::F16),
        1 => Just(DType::BF16),
    ]
}

/// Extreme values (NaN, ±inf, ±0, ±1e±30 mixed in) one case in 3; shrinks to ordinary.
fn extreme() -> prop::bool::Weighted {
    one_in(3)
}

/// Mixed into extreme values one element in 6, in the order they shrink to.
static SPECIAL: [f32; 8] = [
    0.0,
    -0.0,
    1e30,
    -1e-30,
    3e38,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
];

/// `len` values: uniform in ±1 (shrinking to 0), or with [`SPECIAL`] ones mixed in.
fn values(len: usize, extreme: bool) -> BoxedStrategy<Vec<f32>> {
    let ordinary = -1.0f32..1.0;
    if extreme {
        vec(
            prop_oneof![5 => ordinary, 1 => prop::sample::select(&SPECIAL[..])],
            len,
        )
        .boxed()
    } else {
        vec(ordinary, len).boxed()
    }
}

/// An argument: its name in the call, shape, dtype and values, made a tensor on each context.
#[derive(Clone)]
pub struct Arg {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: Vec<f32>,
}

impl Arg {
    pub fn on(&self, ctx: &Context) -> Result<Tensor> {
        ctx.tensor_as(&self.data, &self.shape, self.dtype)
    }
}

/// One line per argument, even in proptest's `{:#?}` report.
impl fmt::Debug for Arg {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Arg")
            .field("name", &self.name)
            .field("shape", &format_args!("{:?}", self.shape))
            .field("dtype", &self.dtype)
            .field("data", &format_args!("{:?}", self.data))
            .finish()
    }
}

/// The name and shape of an argument.
pub type Shape = (&'static str, Vec<usize>);

/// A case: its parameters that are not shapes (degrees, a scale, ...), whether its values are
/// extreme, and its arguments.
#[derive(Clone, Debug)]
pub struct Case<P, const N: usize> {
    pub params: P,
    pub extreme: bool,
    pub args: [Arg; N],
}

/// Values for arguments of these shapes and dtypes.
pub fn args<const N: usize>(
    shapes: [Shape; N],
    dtypes: [DType; N],
    extreme: bool,
) -> impl Strategy<Value = [Arg; N]> {
    let mut dtypes = dtypes.into_iter();
    shapes.map(|(name, shape)| {
        let dtype = dtypes.next().unwrap();
        values(shape.iter().product(), extreme).prop_map(move |data| Arg {
            name,
            shape: shape.clone(),
            dtype,
            data,
        })
    })
}

/// Cases whose parameters and shapes `layout` draws; the dtypes, whether values are extreme
/// and the values are drawn here. The layout shrinks first, then the values.
pub fn case<P, const N: usize>(
    layout: impl Strategy<Value = (P, [Shape; N])>,
) -> impl Strategy<Value = Case<P, N>>
where
    P: Clone + fmt::Debug + 'static,
{
    layout_first(
        (layout, [(); N].map(|()| dtype()), extreme()),
        |((params, shapes), dtypes, extreme)| {
            args(shapes, dtypes, extreme).prop_map(move |args| Case {
                params: params.clone(),
                extreme,
                args,
            })
        },
    )
}

/// [`case`]'s layout with an extra draw that depends on it (graph's index), drawn with the
/// values and shrunk after the layout.
pub fn case_with<P, X, const N: usize>(
    layout: impl Strategy<Value = (P, [Shape; N])>,
    extra: impl Fn(&P) -> X,
) -> impl Strategy<Value = (Case<P, N>, X::Value)>
where
    P: Clone + fmt::Debug + 'static,
    X: Strategy,
{
    layout_first(
        (layout, [(); N].map(|()| dtype()), extreme()),
        move |((params, shapes), dtypes, extreme)| {
            let extra = extra(&params);
            (args(shapes, dtypes, extreme), extra).prop_map(move |(args, x)| {
                let case = Case {
                    params: params.clone(),
                    extreme,
                    args,
                };
                (case, x)
            })
        },
    )
}
