//! Recording work for the device: dispatches, clears and copies collected in order, then
//! submitted together inside validation and out-of-memory error scopes (after vello's
//! `Recording`). Every launch of the crate goes through [`Recording::dispatch`].

use std::sync::Arc;

use super::dispatch::{self, Block, Bound, Operand};
use super::pool::PooledBuffer;
use super::{shader, GpuDevice, Kernel, Shader, ELEMENTWISE_WORKGROUP};
use crate::Result;

enum Step<'a> {
    Dispatch {
        kernel: Arc<Kernel>,
        uniform: PooledBuffer,
        bindings: Vec<Bound<'a>>,
        workgroups: u32,
    },
    Clear(&'a wgpu::Buffer),
    Copy {
        from: &'a wgpu::Buffer,
        from_offset: u64,
        to: &'a wgpu::Buffer,
        to_offset: u64,
        bytes: u64,
    },
}

/// Work recorded for one submission.
pub(crate) struct Recording<'a> {
    gpu: &'a GpuDevice,
    steps: Vec<Step<'a>>,
}

impl GpuDevice {
    /// An empty recording on this device.
    pub(crate) fn recording(&self) -> Recording<'_> {
        Recording {
            gpu: self,
            steps: Vec::new(),
        }
    }
}

impl<'a> Recording<'a> {
    /// One dispatch of `workgroups` workgroups (folded into two dimensions past the
    /// per-dimension limit) with `params` as the uniform at binding 0 and `bindings` at
    /// 1, 2, … in order. The uniform is written now; the dispatch runs at [`submit`](Self::submit).
    pub(crate) fn dispatch<P: bytemuck::Pod>(
        &mut self,
        kernel: &Arc<Kernel>,
        params: &P,
        bindings: &[Bound<'a>],
        workgroups: u32,
    ) -> Result<()> {
        self.steps.push(Step::Dispatch {
            kernel: kernel.clone(),
            uniform: self.gpu.uniform(params)?,
            bindings: bindings.to_vec(),
            workgroups,
        });
        Ok(())
    }

    /// One dispatch per block, each bound `[params, block's operands…]`; `launch` gives a
    /// block's uniform and workgroup count.
    pub(crate) fn dispatch_blocks<P: bytemuck::Pod, const N: usize>(
        &mut self,
        kernel: &Arc<Kernel>,
        blocks: &[Block<'a, N>],
        launch: impl Fn(&Block<'a, N>) -> (P, u32),
    ) -> Result<()> {
        for block in blocks {
            let (params, workgroups) = launch(block);
            self.dispatch(kernel, &params, &block.bound, workgroups)?;
        }
        Ok(())
    }

    /// Zeroes `buffer`.
    pub(crate) fn clear(&mut self, buffer: &'a wgpu::Buffer) {
        self.steps.push(Step::Clear(buffer));
    }

    /// Copies `bytes` bytes between buffers.
    pub(crate) fn copy(
        &mut self,
        from: &'a wgpu::Buffer,
        from_offset: u64,
        to: &'a wgpu::Buffer,
        to_offset: u64,
        bytes: u64,
    ) {
        self.steps.push(Step::Copy {
            from,
            from_offset,
            to,
            to_offset,
            bytes,
        });
    }

    /// Records every step into one command buffer and submits it, inside error scopes so
    /// that any wgpu error becomes an `Err` naming the call (a lost device, asked first
    /// since it drops submissions silently, is `DeviceLost`).
    pub(crate) fn submit(self) -> Result<()> {
        let gpu = self.gpu;
        gpu.check_alive()?;
        gpu.scoped("a submission", 0, || {
            let mut encoder = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
            for step in &self.steps {
                match step {
                    Step::Dispatch {
                        kernel,
                        uniform,
                        bindings,
                        workgroups,
                    } => gpu.encode_dispatch(&mut encoder, kernel, uniform, bindings, *workgroups),
                    Step::Clear(buffer) => encoder.clear_buffer(buffer, 0, None),
                    Step::Copy {
                        from,
                        from_offset,
                        to,
                        to_offset,
                        bytes,
                    } => encoder.copy_buffer_to_buffer(from, *from_offset, to, *to_offset, *bytes),
                }
            }
            gpu.queue.submit([encoder.finish()]);
        })
    }
}

const FILL: Shader = shader!("util/fill.wgsl");

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FillParams {
    len: u32,
    skip: u32,
    value: f32,
    _pad: u32,
}

impl GpuDevice {
    fn encode_dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        kernel: &Kernel,
        uniform: &PooledBuffer,
        bindings: &[Bound<'_>],
        workgroups: u32,
    ) {
        let entries: Vec<wgpu::BindGroupEntry<'_>> =
            std::iter::once(Bound::whole(uniform.buffer()))
                .chain(bindings.iter().copied())
                .enumerate()
                .map(|(i, bound)| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: bound.resource(),
                })
                .collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.label),
            layout: &kernel.layout,
            entries: &entries,
        });
        let (x, y, z) = dispatch::grid(workgroups, self.max_workgroups_per_dim);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(kernel.label),
            timestamp_writes: None,
        });
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
    }

    /// Writes `value` into the first `len` f32 elements of `buffer`, one binding window at a time.
    pub(crate) fn fill(&self, buffer: &wgpu::Buffer, len: u64, value: f32) -> Result<()> {
        let kernel = self.kernel(&FILL)?;
        let operand = Operand::rows("buffer", buffer, crate::dtype::DType::F32, 1);
        let blocks = self.binding.blocks("fill", len as usize, [operand])?;
        let mut recording = self.recording();
        recording.dispatch_blocks(&kernel, &blocks, |block| {
            let params = FillParams {
                len: block.rows.count as u32,
                skip: block.bound[0].skip(),
                value,
                _pad: 0,
            };
            let groups = block.rows.count.div_ceil(ELEMENTWISE_WORKGROUP as usize);
            (params, groups as u32)
        })?;
        recording.submit()
    }
}

#[cfg(test)]
mod tests {
    use crate::call::Call;
    use crate::Error;

    #[test]
    fn a_validation_error_in_a_submission_is_an_err_naming_the_call() {
        let Some(ctx) = crate::context::test_gpu(crate::GpuOptions::default()) else {
            return;
        };
        let gpu = ctx.gpu_device().unwrap();
        let small = gpu.storage(4).unwrap();
        let large = gpu.storage(2048).unwrap();
        // A copy past the end of `small`: wgpu's validation refuses it at submission, and
        // outside a scope its default handler would panic.
        let _call = Call::enter("test::copy");
        let mut recording = gpu.recording();
        recording.copy(large.buffer(), 0, small.buffer(), 0, 4096);
        match recording.submit() {
            Err(Error::Gpu(message)) => {
                assert!(message.starts_with("test::copy: wgpu error:"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        // The device is not lost by it.
        assert_eq!(ctx.zeros(&[2]).unwrap().to_vec().unwrap(), vec![0.0; 2]);
    }
}
