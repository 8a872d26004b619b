//! so3: spherical harmonics, the CG and Gaunt products (at low degrees and on the O(L³)
//! routes at high ones), the weighted product, the equivariant linear map, rotations, the 2D
//! FFT and the CP product.

use proptest::prelude::*;
use wgkernels::so3;

use crate::check::{check, values};
use crate::strategies::{case, dim, near, one_in, Case};

/// The size of the degrees 0..=l.
fn sh(l: usize) -> usize {
    (l + 1) * (l + 1)
}

/// Vectors [n, 3] (now and then [n, 2]) and ∂Y [n, (lmax+1)²], at lmax 0..=4.
#[test]
fn so3_spherical_harmonics() {
    let layout = (0usize..5, dim(), one_in(8)).prop_map(|(lmax, n, two)| {
        let shapes = [
            ("vectors", vec![n, if two { 2 } else { 3 }]),
            ("dy", vec![n, sh(lmax)]),
        ];
        (("lmax", lmax), shapes)
    });
    check(case(layout), |p, case| {
        let [vectors, dy] = &case.args;
        let (_, lmax) = case.params;
        p.both("so3::spherical_harmonics", case.extreme, &|c| {
            Ok(vec![values(so3::spherical_harmonics(
                c,
                &vectors.on(c)?,
                lmax,
            ))?])
        })?;
        p.both("so3::spherical_harmonics_backward", case.extreme, &|c| {
            Ok(vec![values(so3::spherical_harmonics_backward(
                c,
                &vectors.on(c)?,
                lmax,
                &dy.on(c)?,
            ))?])
        })
    });
}

/// The degrees of a product's inputs and output.
#[derive(Clone, Copy, Debug)]
struct Degrees {
    l1: usize,
    l2: usize,
    lo: usize,
}

/// Degrees l1, l2 in 0..=3 and lo in 0..=4, n rows, c channels, and whether x2 has one
/// channel (broadcast) or c.
fn product_layout() -> impl Strategy<Value = (Degrees, usize, usize, bool)> {
    (0usize..4, 0usize..4, 0usize..5, dim(), dim(), any::<bool>())
        .prop_map(|(l1, l2, lo, n, c, one)| (Degrees { l1, l2, lo }, n, c, one))
}

/// A product's x1 [n, c, (l1+1)²], x2 [n, 1 or c, (l2+1)²], ∂out [n, c, (lo+1)²] and
/// path weights [1 or n, c, paths] (the last two now and then mismatched).
fn product() -> impl Strategy<Value = Case<Degrees, 4>> {
    let layout = (product_layout(), near(), any::<bool>(), near()).prop_map(
        |((d, n, c, one), near_out, shared, near_paths)| {
            let paths = so3::paths(d.l1, d.l2, d.lo).len();
            let shapes = [
                ("x1", vec![n, c, sh(d.l1)]),
                ("x2", vec![n, if one { 1 } else { c }, sh(d.l2)]),
                ("dy", vec![n, c, near_out.of(sh(d.lo))]),
                (
                    "weights",
                    vec![if shared { 1 } else { n }, c, near_paths.of(paths)],
                ),
            ];
            (d, shapes)
        },
    );
    case(layout)
}

#[test]
fn so3_cg_product() {
    check(product(), |p, case| {
        let [x1, x2, dy, _] = &case.args;
        let lo = case.params.lo;
        p.both("so3::cg_product", case.extreme, &|c| {
            Ok(vec![values(so3::cg_product(
                c,
                &x1.on(c)?,
                &x2.on(c)?,
                lo,
            ))?])
        })?;
        p.both("so3::cg_product_backward", case.extreme, &|c| {
            let gr = so3::cg_product_backward(c, &x1.on(c)?, &x2.on(c)?, lo, &dy.on(c)?)?;
            Ok(vec![gr.x1.to_vec()?, gr.x2.to_vec()?])
        })
    });
}

#[test]
fn so3_gaunt_product() {
    check(product(), |p, case| {
        let [x1, x2, dy, _] = &case.args;
        let lo = case.params.lo;
        for method in [
            so3::GauntMethod::Direct,
            so3::GauntMethod::Grid,
            so3::GauntMethod::Fourier,
        ] {
            p.both(
                &format!("so3::gaunt_product ({method:?})"),
                case.extreme,
                &|c| {
                    Ok(vec![values(so3::gaunt_product(
                        c,
                        &x1.on(c)?,
                        &x2.on(c)?,
                        lo,
                        method,
                    ))?])
                },
            )?;
            p.both(
                &format!("so3::gaunt_product_backward ({method:?})"),
                case.extreme,
                &|c| {
                    let gr = so3::gaunt_product_backward(
                        c,
                        &x1.on(c)?,
                        &x2.on(c)?,
                        lo,
                        method,
                        &dy.on(c)?,
                    )?;
                    Ok(vec![gr.x1.to_vec()?, gr.x2.to_vec()?])
                },
            )?;
        }
        Ok(())
    });
}

/// The O(L³) routes at high degrees (past one workgroup's memory from about
/// l1 + l2 + lmax_out > 44): a few rows, degrees 5..=MAX_L.
#[test]
fn so3_gaunt_product_high_degrees() {
    let degree = || 5..=so3::MAX_L;
    let layout = (degree(), degree(), degree(), 1usize..3).prop_map(|(l1, l2, lo, rows)| {
        let shapes = [("x1", vec![rows, 1, sh(l1)]), ("x2", vec![rows, 1, sh(l2)])];
        (Degrees { l1, l2, lo }, shapes)
    });
    check(case(layout), |p, case| {
        let [x1, x2] = &case.args;
        let lo = case.params.lo;
        for method in [so3::GauntMethod::Grid, so3::GauntMethod::Fourier] {
            p.both(
                &format!("so3::gaunt_product ({method:?}, degrees 5..=24)"),
                case.extreme,
                &|c| {
                    Ok(vec![values(so3::gaunt_product(
                        c,
                        &x1.on(c)?,
                        &x2.on(c)?,
                        lo,
                        method,
                    ))?])
                },
            )?;
        }
        Ok(())
    });
}

#[test]
fn so3_weighted_cg_product() {
    check(product(), |p, case| {
        let [x1, x2, dy, weights] = &case.args;
        let lo = case.params.lo;
        p.both("so3::weighted_cg_product", case.extreme, &|c| {
            Ok(vec![values(so3::weighted_cg_product(
                c,
                &x1.on(c)?,
                &x2.on(c)?,
                &weights.on(c)?,
                lo,
            ))?])
        })?;
        p.both("so3::weighted_cg_product_backward", case.extreme, &|c| {
            let gr = so3::weighted_cg_product_backward(
                c,
                &x1.on(c)?,
                &x2.on(c)?,
                &weights.on(c)?,
                lo,
                &dy.on(c)?,
            )?;
            Ok(vec![gr.x1.to_vec()?, gr.x2.to_vec()?, gr.weights.to_vec()?])
        })
    });
}

/// Weights [l + 1, c_in, c_out] (now and then for one degree more or less), x [n, c_in,
/// (l+1)²] and ∂y [n, c_out, (l+1)²], at l 0..=3.
#[test]
fn so3_linear() {
    let layout = (0usize..4, dim(), dim(), dim(), near()).prop_map(|(l, n, c_in, c_out, near)| {
        let shapes = [
            ("w", vec![near.of(l + 1), c_in, c_out]),
            ("x", vec![n, c_in, sh(l)]),
            ("dy", vec![n, c_out, sh(l)]),
        ];
        ((), shapes)
    });
    check(case(layout), |p, case| {
        let [w, x, dy] = &case.args;
        p.both("so3::linear", case.extreme, &|c| {
            Ok(vec![values(so3::linear(c, &x.on(c)?, &w.on(c)?))?])
        })?;
        p.both("so3::linear_backward", case.extreme, &|c| {
            let gr = so3::linear_backward(c, &x.on(c)?, &w.on(c)?, &dy.on(c)?)?;
            Ok(vec![gr.x.to_vec()?, gr.w.to_vec()?])
        })
    });
}

/// x [n, c, (l+1)²] at l 0..=3, rotated about a fixed axis by an angle in [0, 2π).
#[test]
fn so3_rotate() {
    let layout = (0usize..4, dim(), dim(), 0.0..std::f64::consts::TAU)
        .prop_map(|(l, n, c, angle)| (("angle", angle), [("x", vec![n, c, sh(l)])]));
    check(case(layout), |p, case| {
        let [x] = &case.args;
        let rotation = so3::Rotation::from_axis_angle([0.3, -1.0, 0.5], case.params.1).unwrap();
        p.both("so3::rotate", case.extreme, &|c| {
            Ok(vec![values(so3::rotate(c, &x.on(c)?, &rotation))?])
        })
    });
}

/// A grid [b, rows, columns, 2] of complex values (now and then with 1 or 3 in the last place).
#[test]
fn so3_fft2() {
    let layout = (dim(), dim(), dim(), near())
        .prop_map(|(b, rows, cols, near)| ((), [("grid", vec![b, rows, cols, near.of(2)])]));
    check(case(layout), |p, case| {
        let [grid] = &case.args;
        for direction in [
            so3::fft::FftDirection::Forward,
            so3::fft::FftDirection::Inverse,
        ] {
            p.both(&format!("so3::fft2 ({direction:?})"), case.extreme, &|c| {
                Ok(vec![values(so3::fft::fft2(c, &grid.on(c)?, direction))?])
            })?;
        }
        Ok(())
    });
}

/// The CP product at a small fitted rank (0..=5), on a product's inputs where their degrees
/// fit (at most 2; ALS at these sizes takes milliseconds and is cached).
#[test]
fn so3_cp_product() {
    let layout = (product_layout(), 0usize..6).prop_map(|((d, n, c, one), rank)| {
        let shapes = [
            ("x1", vec![n, c, sh(d.l1)]),
            ("x2", vec![n, if one { 1 } else { c }, sh(d.l2)]),
        ];
        ((d, ("rank", rank)), shapes)
    });
    check(case(layout), |p, case| {
        let [x1, x2] = &case.args;
        let (d, (_, rank)) = case.params;
        let (f1, f2, fo) = (d.l1.min(2), d.l2.min(2), d.lo.min(2));
        p.both("so3::CpProduct", case.extreme, &|c| {
            let cp = so3::CpProduct::fit(f1, f2, fo, rank)?;
            let out = cp.apply(c, &x1.on(c)?, &x2.on(c)?)?;
            let d = out.shape().to_vec();
            let g = c.tensor(&vec![0.5; out.len()], &d)?;
            let gr = cp.backward(c, &x1.on(c)?, &x2.on(c)?, &g)?;
            Ok(vec![out.to_vec()?, gr.x1.to_vec()?, gr.x2.to_vec()?])
        })
    });
}
