//! The arithmetic the harmonics' f64 references are written in: `f64`, or a dual number
//! `a + b·ε` (ε² = 0) whose ε part carries a directional derivative through the same code —
//! forward mode, which makes the double backward exact without a second hand derivation.

use std::ops::{Add, Mul, Sub};

/// A real number as the references use it: f64 or [`Dual`].
pub(crate) trait Real:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self>
{
    fn constant(x: f64) -> Self;
    /// `self / x` for a plain divisor.
    fn over(self, x: Self) -> Self;
    fn sqrt(self) -> Self;
}

impl Real for f64 {
    fn constant(x: f64) -> f64 {
        x
    }
    fn over(self, x: f64) -> f64 {
        self / x
    }
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
}

/// `value + tangent·ε`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Dual {
    pub value: f64,
    pub tangent: f64,
}

impl Add for Dual {
    type Output = Dual;
    fn add(self, o: Dual) -> Dual {
        Dual {
            value: self.value + o.value,
            tangent: self.tangent + o.tangent,
        }
    }
}

impl Sub for Dual {
    type Output = Dual;
    fn sub(self, o: Dual) -> Dual {
        Dual {
            value: self.value - o.value,
            tangent: self.tangent - o.tangent,
        }
    }
}

impl Mul for Dual {
    type Output = Dual;
    fn mul(self, o: Dual) -> Dual {
        Dual {
            value: self.value * o.value,
            tangent: self.tangent * o.value + self.value * o.tangent,
        }
    }
}

impl Real for Dual {
    fn constant(x: f64) -> Dual {
        Dual {
            value: x,
            tangent: 0.0,
        }
    }
    fn over(self, x: Dual) -> Dual {
        Dual {
            value: self.value / x.value,
            tangent: (self.tangent * x.value - self.value * x.tangent) / (x.value * x.value),
        }
    }
    fn sqrt(self) -> Dual {
        let root = self.value.sqrt();
        Dual {
            value: root,
            tangent: self.tangent / (2.0 * root),
        }
    }
}
