use std::time::Instant;
use wgkernels::{attention, Context, GpuOptions, Tuning};

fn best(
    ctx: &Context,
    reps: usize,
    mut f: impl FnMut() -> wgkernels::Result<()>,
) -> wgkernels::Result<f64> {
    f()?;
    ctx.synchronize()?;
    let mut b = f64::INFINITY;
    for _ in 0..reps {
        let t0 = Instant::now();
        f()?;
        ctx.synchronize()?;
        b = b.min(t0.elapsed().as_secs_f64() * 1e3);
    }
    Ok(b)
}

fn main() -> wgkernels::Result<()> {
    let rows = Context::gpu_with(GpuOptions {
        tuning: Tuning::Force("rows".into()),
        ..Default::default()
    })?;
    let tiles = Context::gpu_with(GpuOptions {
        tuning: Tuning::Force("tiles".into()),
        ..Default::default()
    })?;
    println!("fma {:.1} GFLOP/s", wgkernels::roofline::fma_rate(&rows)?);
    for n in [256usize, 512] {
        let d = 64;
        let x: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919 % 1000) as f32) / 1000.0 - 0.5)
            .collect();
        for causal in [false, true] {
            for (name, ctx) in [("tiles", &tiles), ("rows", &rows)] {
                let t = ctx.tensor(&x, &[1, 1, n, d])?;
                let f = best(ctx, 3, || {
                    attention::softmax(ctx, &t, &t, &t, causal).map(drop)
                })?;
                let b = best(ctx, 2, || {
                    attention::softmax_backward(ctx, &t, &t, &t, &t, causal).map(drop)
                })?;
                println!("n={n} causal={causal} {name}: softmax fwd {f:.2} ms bwd {b:.2} ms");
            }
        }
    }
    Ok(())
}
