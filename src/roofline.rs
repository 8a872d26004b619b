//! The device's own ceilings, measured: copy bandwidth and FMA rate. Benchmarks report each
//! kernel as a fraction of these, measured in the same run, so figures from different
//! machines (lavapipe included) read the same way.

use crate::bench::time_calls;
use crate::gpu::{shader, Bound, GpuDevice, Shader, ELEMENTWISE_WORKGROUP};
use crate::{op, Context, Result};

const COPY: Shader = shader!("roofline/copy.wgsl");
const FMA: Shader = shader!("roofline/fma.wgsl");

/// Bytes moved by the copy probe on each side, at most (less where one binding is smaller).
const COPY_BYTES: u64 = 256 << 20;
/// Threads of the FMA probe: enough to fill the largest GPUs.
const FMA_THREADS: u32 = 1 << 18;
/// Flops per thread per loop iteration of the FMA probe (8 chains × vec4 × 2).
const FMA_FLOPS_PER_ITERATION: f64 = 64.0;

/// Measured ceilings of a device.
#[derive(Clone, Copy, Debug)]
pub struct DeviceRates {
    /// Copy bandwidth, bytes read + written per second, in GB/s (1e9 bytes).
    pub copy_gbps: f64,
    /// f32 FMA throughput in GFLOP/s, counting an FMA as two flops.
    pub fma_gflops: f64,
}

/// Measures both ceilings.
pub fn measure(ctx: &Context) -> Result<DeviceRates> {
    Ok(DeviceRates {
        copy_gbps: copy_bandwidth(ctx)?,
        fma_gflops: fma_rate(ctx)?,
    })
}

/// Copy bandwidth in GB/s (read + written), from a large copy kernel (GPU) or `memcpy`
/// (CPU path).
pub fn copy_bandwidth(ctx: &Context) -> Result<f64> {
    op::choose(
        ctx,
        || {
            let len = (COPY_BYTES / 4) as usize;
            let src = vec![1.0f32; len];
            let mut dst = vec![0.0f32; len];
            let seconds = time_calls(ctx, 0.5, || {
                dst.copy_from_slice(std::hint::black_box(&src));
                std::hint::black_box(&mut dst);
                Ok(())
            })?
            .median;
            Ok(2.0 * COPY_BYTES as f64 / seconds / 1e9)
        },
        |gpu| gpu_copy_bandwidth(ctx, gpu),
    )
}

fn gpu_copy_bandwidth(ctx: &Context, gpu: &GpuDevice) -> Result<f64> {
    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        len: u32,
        _pad: [u32; 3],
    }
    let bytes = COPY_BYTES
        .min(gpu.binding.max_bytes)
        .min(gpu.max_buffer_bytes)
        / 16
        * 16;
    let len = (bytes / 4) as usize;
    let kernel = gpu.kernel(&COPY)?;
    let src = gpu.storage(len)?;
    let dst = gpu.storage(len)?;
    gpu.fill(src.buffer(), len as u64, 1.0)?;
    let params = Params {
        len: (len / 4) as u32,
        _pad: [0; 3],
    };
    let groups = (len as u64 / 4).div_ceil(ELEMENTWISE_WORKGROUP as u64) as u32;
    let bindings = [Bound::whole(src.buffer()), Bound::whole(dst.buffer())];
    let seconds = time_calls(ctx, 1.0, || {
        let mut recording = gpu.recording();
        recording.dispatch(&kernel, &params, &bindings, groups)?;
        recording.submit()
    })?
    .median;
    Ok(2.0 * bytes as f64 / seconds / 1e9)
}

/// f32 FMA throughput in GFLOP/s (an FMA counts as two flops): independent FMA chains on
/// every thread (GPU), or on every core (CPU path).
pub fn fma_rate(ctx: &Context) -> Result<f64> {
    op::choose(ctx, || cpu_fma_rate(ctx), |gpu| gpu_fma_rate(ctx, gpu))
}

fn gpu_fma_rate(ctx: &Context, gpu: &GpuDevice) -> Result<f64> {
    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        iterations: u32,
        threads: u32,
        _pad: [u32; 2],
    }
    let kernel = gpu.kernel(&FMA)?;
    let out = gpu.storage(FMA_THREADS as usize)?;
    let groups = FMA_THREADS / ELEMENTWISE_WORKGROUP;
    let launch = |iterations: u32| -> Result<()> {
        let params = Params {
            iterations,
            threads: FMA_THREADS,
            _pad: [0; 2],
        };
        let mut recording = gpu.recording();
        recording.dispatch(&kernel, &params, &[Bound::whole(out.buffer())], groups)?;
        recording.submit()
    };
    // Lengthen the loop until one launch takes 10 ms, so that launch overhead is noise.
    let mut iterations = 16u32;
    while iterations < (1 << 24) {
        let start = std::time::Instant::now();
        launch(iterations)?;
        ctx.synchronize()?;
        if start.elapsed().as_secs_f64() > 0.01 {
            break;
        }
        iterations *= 2;
    }
    let seconds = time_calls(ctx, 1.0, || launch(iterations))?.median;
    Ok(FMA_THREADS as f64 * iterations as f64 * FMA_FLOPS_PER_ITERATION / seconds / 1e9)
}

fn cpu_fma_rate(ctx: &Context) -> Result<f64> {
    use rayon::prelude::*;
    const LANES: usize = 64;
    const ITERATIONS: usize = 1 << 16;
    let workers = rayon::current_num_threads() * 4;
    let seconds = time_calls(ctx, 1.0, || {
        let total: f32 = (0..workers)
            .into_par_iter()
            .map(|w| {
                let mut x = [w as f32 * 1e-7; LANES];
                for _ in 0..ITERATIONS {
                    for v in x.iter_mut() {
                        *v = *v * 0.9999 + 1e-4; // mul + add: mul_add is a libm call without target FMA
                    }
                }
                x.iter().sum::<f32>()
            })
            .sum();
        std::hint::black_box(total);
        Ok(())
    })?
    .median;
    Ok((workers * LANES * ITERATIONS) as f64 * 2.0 / seconds / 1e9)
}
