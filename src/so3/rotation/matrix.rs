//! [`Rotation`]: a proper rotation of R³, the argument of [`wigner_d`](super::wigner_d) and
//! [`rotate`](super::rotate), made from an axis and angle, a quaternion or a checked matrix.

use crate::{Error, Result};

/// A proper rotation of R³ (orthonormal, determinant +1), acting as `v' = R·v`.
///
/// ```
/// use wgkernels::so3::Rotation;
/// # fn main() -> wgkernels::Result<()> {
/// let quarter = Rotation::from_axis_angle([0.0, 0.0, 1.0], std::f64::consts::FRAC_PI_2)?;
/// let v = quarter.apply([1.0, 0.0, 0.0]); // x → y
/// assert!((v[0]).abs() < 1e-15 && (v[1] - 1.0).abs() < 1e-15);
/// assert!(Rotation::from_matrix([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]]).is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rotation {
    matrix: [[f64; 3]; 3],
}

impl Rotation {
    /// The identity.
    pub const IDENTITY: Rotation = Rotation {
        matrix: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    };

    /// The rotation with this row-major matrix; `Err` unless it is orthonormal to 1e-6
    /// (`max |RᵀR − I|`) with determinant +1.
    pub fn from_matrix(matrix: [[f64; 3]; 3]) -> Result<Rotation> {
        let r = &matrix;
        let off_orthonormal = (0..3)
            .flat_map(|i| (0..3).map(move |j| (i, j)))
            .map(|(i, j)| {
                ((0..3).map(|k| r[k][i] * r[k][j]).sum::<f64>() - (i == j) as u8 as f64).abs()
            })
            .fold(0.0, f64::max);
        let det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1])
            - r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0])
            + r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
        if !(off_orthonormal < 1e-6 && det > 0.0) {
            return Err(Error::InvalidArgument {
                op: "so3::Rotation::from_matrix",
                arg: "matrix",
                message: format!(
                    "must be a proper rotation: |RᵀR − I| = {off_orthonormal:.1e}, det = {det}"
                ),
            });
        }
        Ok(Rotation { matrix })
    }

    /// The rotation by `angle` radians about `axis` (right-handed; any nonzero length).
    pub fn from_axis_angle(axis: [f64; 3], angle: f64) -> Result<Rotation> {
        const OP: &str = "so3::Rotation::from_axis_angle";
        let _call = crate::call::Call::enter(OP);
        let length = axis.iter().map(|x| x * x).sum::<f64>().sqrt();
        if !(length > 0.0 && length.is_finite()) {
            return Err(Error::InvalidArgument {
                op: OP,
                arg: "axis",
                message: format!("must be nonzero and finite, got {axis:?}"),
            });
        }
        if !angle.is_finite() {
            return Err(Error::InvalidArgument {
                op: OP,
                arg: "angle",
                message: format!("must be finite, got {angle}"),
            });
        }
        let (s, c) = (angle / 2.0).sin_cos();
        let [x, y, z] = axis.map(|v| v / length * s);
        Ok(Rotation::unit_quaternion([c, x, y, z]))
    }

    /// The rotation of the quaternion `w + xi + yj + zk` (`[w, x, y, z]`, any nonzero length;
    /// `q` and `−q` give the same rotation). A uniformly random unit quaternion gives a
    /// uniformly random rotation.
    pub fn from_quaternion(q: [f64; 4]) -> Result<Rotation> {
        let length = q.iter().map(|x| x * x).sum::<f64>().sqrt();
        if !(length > 0.0 && length.is_finite()) {
            return Err(Error::InvalidArgument {
                op: "so3::Rotation::from_quaternion",
                arg: "q",
                message: format!("must be nonzero and finite, got {q:?}"),
            });
        }
        Ok(Rotation::unit_quaternion(q.map(|v| v / length)))
    }

    fn unit_quaternion([w, x, y, z]: [f64; 4]) -> Rotation {
        Rotation {
            matrix: [
                [
                    1.0 - 2.0 * (y * y + z * z),
                    2.0 * (x * y - w * z),
                    2.0 * (x * z + w * y),
                ],
                [
                    2.0 * (x * y + w * z),
                    1.0 - 2.0 * (x * x + z * z),
                    2.0 * (y * z - w * x),
                ],
                [
                    2.0 * (x * z - w * y),
                    2.0 * (y * z + w * x),
                    1.0 - 2.0 * (x * x + y * y),
                ],
            ],
        }
    }

    /// The row-major matrix R.
    pub fn matrix(&self) -> [[f64; 3]; 3] {
        self.matrix
    }

    /// `R·v`.
    pub fn apply(&self, v: [f64; 3]) -> [f64; 3] {
        self.matrix.map(|row| (0..3).map(|k| row[k] * v[k]).sum())
    }

    /// `R⁻¹ = Rᵀ`.
    pub fn inverse(&self) -> Rotation {
        let r = self.matrix;
        Rotation {
            matrix: std::array::from_fn(|i| std::array::from_fn(|j| r[j][i])),
        }
    }
}

/// `R1 * R2` applies R2 first, then R1 (the matrix product).
impl std::ops::Mul for Rotation {
    type Output = Rotation;
    fn mul(self, other: Rotation) -> Rotation {
        let (a, b) = (self.matrix, other.matrix);
        Rotation {
            matrix: std::array::from_fn(|i| {
                std::array::from_fn(|j| (0..3).map(|k| a[i][k] * b[k][j]).sum())
            }),
        }
    }
}
