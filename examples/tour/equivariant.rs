//! The tour's SO(3) checks: harmonics, products and rotations, then the blocks of an
//! equivariant layer's training (the products' gradients, the weighted product, the
//! harmonics' gradient, linear and the graph operations).

use rand::rngs::StdRng;
use rand::Rng;
use wgkernels::{so3, Context, Result};

use super::{uniform, Check};

pub(crate) fn so3_checks(ctx: &Context, rng: &mut StdRng, checks: &mut Vec<Check>) -> Result<()> {
    let (n, lmax) = (1000, 12);
    let v = uniform(rng, 3 * n);
    let y = so3::spherical_harmonics(ctx, &ctx.tensor(&v, &[n, 3])?, lmax)?.to_vec()?;
    let want = so3::reference::spherical_harmonics(&v, lmax);
    checks.push(Check::new(
        "so3::spherical_harmonics",
        format!("n={n}, lmax={lmax}"),
        &y,
        &want,
    ));

    let (n, c, l1, l2, lout) = (17, 5, 3, 2, 4);
    let (d1, d2) = (so3::reference::dim(l1), so3::reference::dim(l2));
    let (x1, x2) = (uniform(rng, n * c * d1), uniform(rng, n * d2));
    let (t1, t2) = (ctx.tensor(&x1, &[n, c, d1])?, ctx.tensor(&x2, &[n, 1, d2])?);
    let wide = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let shape = format!("{n}×{c}, {l1}⊗{l2}→{lout}");
    for (name, kind) in [
        ("so3::cg_product", so3::Coefficients::ClebschGordan),
        ("so3::gaunt_product (Direct)", so3::Coefficients::Gaunt),
    ] {
        let table = so3::products::product_table(kind, l1, l2, lout);
        let want = so3::products::apply(&table, &wide(&x1), d1, &wide(&x2), d2, c);
        let got = match kind {
            so3::Coefficients::ClebschGordan => so3::cg_product(ctx, &t1, &t2, lout)?,
            so3::Coefficients::Gaunt => {
                so3::gaunt_product(ctx, &t1, &t2, lout, so3::GauntMethod::Direct)?
            }
        };
        checks.push(Check::new(name, shape.clone(), &got.to_vec()?, &want));
        if kind == so3::Coefficients::Gaunt {
            for (name, method) in [
                ("so3::gaunt_product (Fourier)", so3::GauntMethod::Fourier),
                ("so3::gaunt_product (Grid)", so3::GauntMethod::Grid),
            ] {
                let got = so3::gaunt_product(ctx, &t1, &t2, lout, method)?;
                checks.push(Check::new(name, shape.clone(), &got.to_vec()?, &want));
            }
        }
    }
    training_checks(ctx, rng, checks)
}

/// The blocks of an equivariant layer's training: the products' gradients, the weighted
/// product, the harmonics' gradient, linear and the graph operations.
fn training_checks(ctx: &Context, rng: &mut StdRng, checks: &mut Vec<Check>) -> Result<()> {
    use so3::products::{apply_weighted, grouped, Grouping, Weights};
    let wide = |x: &[f32]| x.iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let (n, c, l1, l2, lout) = (17, 5, 3, 2, 4);
    let (d1, d2, d3) = (
        so3::reference::dim(l1),
        so3::reference::dim(l2),
        so3::reference::dim(lout),
    );
    let count = so3::paths(l1, l2, lout).len();
    let (x1, x2, w, g) = (
        uniform(rng, n * c * d1),
        uniform(rng, n * d2),
        uniform(rng, n * c * count),
        uniform(rng, n * c * d3),
    );
    let (t1, t2) = (ctx.tensor(&x1, &[n, c, d1])?, ctx.tensor(&x2, &[n, 1, d2])?);
    let (tw, tg) = (
        ctx.tensor(&w, &[n, c, count])?,
        ctx.tensor(&g, &[n, c, d3])?,
    );
    let shape = format!("{n}×{c}, {l1}⊗{l2}→{lout}");
    let ww = wide(&w);
    let weights_of = Weights {
        data: &ww,
        paths: count,
        shared_channels: None,
    };
    let kind = so3::Coefficients::ClebschGordan;
    let want = apply_weighted(
        &grouped(kind, l1, l2, lout, Grouping::Output),
        &wide(&x1),
        d1,
        &wide(&x2),
        d2,
        c,
        Some(&weights_of),
    );
    let got = so3::weighted_cg_product(ctx, &t1, &t2, &tw, lout)?.to_vec()?;
    checks.push(Check::new(
        "so3::weighted_cg_product",
        shape.clone(),
        &got,
        &want,
    ));
    let grads = so3::weighted_cg_product_backward(ctx, &t1, &t2, &tw, lout, &tg)?;
    let want = apply_weighted(
        &grouped(kind, l1, l2, lout, Grouping::X1),
        &wide(&g),
        d3,
        &wide(&x2),
        d2,
        c,
        Some(&weights_of),
    );
    checks.push(Check::new(
        "so3::weighted_cg_product_backward",
        format!("{shape} ∂x1"),
        &grads.x1.to_vec()?,
        &want,
    ));
    let table = so3::products::path_table(l1, l2, lout);
    let want = so3::products::path_gradient(
        &table,
        (&wide(&x1), d1),
        (&wide(&x2), d2, c),
        (&wide(&g), d3),
    );
    checks.push(Check::new(
        "so3::weighted_cg_product_backward",
        format!("{shape} ∂w"),
        &grads.weights.to_vec()?,
        &want,
    ));
    let gaunt = so3::Coefficients::Gaunt;
    let want = apply_weighted(
        &grouped(gaunt, l1, l2, lout, Grouping::X1),
        &wide(&g),
        d3,
        &wide(&x2),
        d2,
        c,
        None,
    );
    for (name, method) in [
        (
            "so3::gaunt_product_backward (Direct)",
            so3::GauntMethod::Direct,
        ),
        ("so3::gaunt_product_backward (Grid)", so3::GauntMethod::Grid),
        (
            "so3::gaunt_product_backward (Fourier)",
            so3::GauntMethod::Fourier,
        ),
    ] {
        let got = so3::gaunt_product_backward(ctx, &t1, &t2, lout, method, &tg)?
            .x1
            .to_vec()?;
        checks.push(Check::new(name, format!("{shape} ∂x1"), &got, &want));
    }

    let (n, lmax) = (1000, 6);
    let d = so3::reference::dim(lmax);
    let (v, dy) = (uniform(rng, 3 * n), uniform(rng, n * d));
    let got = so3::spherical_harmonics_backward(
        ctx,
        &ctx.tensor(&v, &[n, 3])?,
        lmax,
        &ctx.tensor(&dy, &[n, d])?,
    )?
    .to_vec()?;
    let want = so3::reference::spherical_harmonics_backward(&v, lmax, &dy);
    checks.push(Check::new(
        "so3::spherical_harmonics_backward",
        format!("n={n}, lmax={lmax}"),
        &got,
        &want,
    ));
    // Its double backward (forces in a loss): H·dd and J·dd.
    let dd = uniform(rng, 3 * n);
    let second = so3::spherical_harmonics_double_backward(
        ctx,
        &ctx.tensor(&v, &[n, 3])?,
        lmax,
        &ctx.tensor(&dy, &[n, d])?,
        &ctx.tensor(&dd, &[n, 3])?,
    )?;
    let [want_v, want_y] = so3::reference::spherical_harmonics_double_backward(&v, lmax, &dy, &dd);
    for (what, got, want) in [
        ("∂vectors", second.vectors.to_vec()?, want_v),
        ("∂d_y", second.d_y.to_vec()?, want_y),
    ] {
        checks.push(Check::new(
            "so3::spherical_harmonics_double_backward",
            format!("n={n}, lmax={lmax} {what}"),
            &got,
            &want,
        ));
    }

    let (n, c_in, c_out, lmax) = (50, 7, 9, 3);
    let d = so3::reference::dim(lmax);
    let (x, w, g) = (
        uniform(rng, n * c_in * d),
        uniform(rng, (lmax + 1) * c_in * c_out),
        uniform(rng, n * c_out * d),
    );
    let (tx, tw, tg) = (
        ctx.tensor(&x, &[n, c_in, d])?,
        ctx.tensor(&w, &[lmax + 1, c_in, c_out])?,
        ctx.tensor(&g, &[n, c_out, d])?,
    );
    let shape = format!("{n}, {c_in}→{c_out}, lmax={lmax}");
    let got = so3::linear(ctx, &tx, &tw)?.to_vec()?;
    checks.push(Check::new(
        "so3::linear",
        shape.clone(),
        &got,
        &so3::reference::linear(&x, &w, [n, c_in, c_out], lmax, false),
    ));
    let grads = so3::linear_backward(ctx, &tx, &tw, &tg)?;
    let want = so3::reference::linear_weight_gradient(&x, &g, [n, c_in, c_out], lmax);
    checks.push(Check::new(
        "so3::linear_backward",
        format!("{shape} ∂w"),
        &grads.w.to_vec()?,
        &want,
    ));

    // The CP product at an exact rank (L = 1: rank 8 fits to ~1e-12) equals cg_product.
    let cp = so3::CpProduct::fit(1, 1, 1, 8)?;
    let (x1, x2) = (uniform(rng, 64 * 3 * 4), uniform(rng, 64 * 3 * 4));
    let (t1, t2) = (ctx.tensor(&x1, &[64, 3, 4])?, ctx.tensor(&x2, &[64, 3, 4])?);
    let table = grouped(so3::Coefficients::ClebschGordan, 1, 1, 1, Grouping::Output);
    let want = apply_weighted(&table, &wide(&x1), 4, &wide(&x2), 4, 1, None);
    let got = cp.apply(ctx, &t1, &t2)?.to_vec()?;
    checks.push(Check::new(
        "so3::CpProduct::apply",
        format!("64×3, 1⊗1→1, rank {}", cp.rank()),
        &got,
        &want,
    ));

    let (edges, nodes, width) = (5000, 333, 6);
    let index: Vec<u32> = (0..edges)
        .map(|_| rng.random_range(0..nodes as u32))
        .collect();
    let idx = wgkernels::graph::Index::new(ctx, &index, nodes)?;
    let src = uniform(rng, edges * width);
    let got =
        wgkernels::graph::scatter_sum(ctx, &ctx.tensor(&src, &[edges, width])?, &idx)?.to_vec()?;
    let segments = wgkernels::graph::reference::Segments::new(&index, nodes);
    let want = wgkernels::graph::reference::scatter_sum(&src, width, &segments);
    checks.push(Check::new(
        "graph::scatter_sum",
        format!("{edges}→{nodes} × {width}"),
        &got,
        &want,
    ));
    let table = uniform(rng, nodes * width);
    let got =
        wgkernels::graph::gather(ctx, &ctx.tensor(&table, &[nodes, width])?, &idx)?.to_vec()?;
    let want = wgkernels::graph::reference::gather(&table, width, &index);
    checks.push(Check::new(
        "graph::gather",
        format!("{nodes}→{edges} × {width}"),
        &got,
        &want,
    ));
    Ok(())
}
