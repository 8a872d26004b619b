//! [`DType`]: how a tensor's elements are stored, and their device encoding.

/// How a tensor's elements are stored. Arithmetic is f32 whatever the storage: half-precision
/// tensors are widened when a kernel reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE binary32.
    F32,
    /// IEEE binary16 (`half::f16`), stored two per 32-bit word on the GPU.
    F16,
    /// bfloat16 (`half::bf16`): the top 16 bits of an f32, stored two per 32-bit word.
    BF16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// `x` rounded to the nearest value this dtype holds (ties to even).
    pub fn round(self, x: f32) -> f32 {
        match self {
            DType::F32 => x,
            DType::F16 => half::f16::from_f32(x).to_f32(),
            DType::BF16 => half::bf16::from_f32(x).to_f32(),
        }
    }

    /// Bytes of a device buffer holding `len` elements (whole 32-bit words).
    pub(crate) fn buffer_bytes(self, len: usize) -> u64 {
        (len * self.size()).div_ceil(4) as u64 * 4
    }

    /// The elements' device representation, padded to whole 32-bit words.
    pub(crate) fn encode(self, data: &[f32]) -> Vec<u8> {
        let mut bytes: Vec<u8> = match self {
            DType::F32 => bytemuck::cast_slice(data).to_vec(),
            DType::F16 => data
                .iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect(),
            DType::BF16 => data
                .iter()
                .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
                .collect(),
        };
        bytes.resize(self.buffer_bytes(data.len()) as usize, 0);
        bytes
    }

    /// The first `len` elements of a device representation, as f32.
    pub(crate) fn decode(self, bytes: &[u8], len: usize) -> Vec<f32> {
        let halves = || bytes.chunks_exact(2).take(len).map(|b| [b[0], b[1]]);
        match self {
            DType::F32 => bytemuck::pod_collect_to_vec(&bytes[..len * 4]),
            DType::F16 => halves()
                .map(|b| half::f16::from_le_bytes(b).to_f32())
                .collect(),
            DType::BF16 => halves()
                .map(|b| half::bf16::from_le_bytes(b).to_f32())
                .collect(),
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        })
    }
}
