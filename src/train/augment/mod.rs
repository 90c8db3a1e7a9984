//! Augmentation at train time: random changes to each training example (crop with padding,
//! flips, rotation and affine moves, brightness and contrast, noise, erasing) and to each
//! training batch (mixup, CutMix), on image features `[N, C, H, W]`.
//!
//! Every draw is seeded by the run's seed, the epoch and the example's row in the training
//! split (a batch's draw by its place in the epoch), never by a generator's history, so a
//! resumed run draws what the uninterrupted one drew and `--resume` stays bit-exact.
//! Validation and test batches are never augmented.

mod config;
pub(crate) mod draw;
mod image;
mod mix;
#[cfg(test)]
mod tests;

use candle_core::{DType, Device, Result, Tensor};

pub use config::{Augment, Crop, Erase};
use draw::Draw;
use image::Image;

/// An [`Augment`] ready for a run: with its seed and, for mixup and CutMix, the number of
/// classes their soft targets spread over.
#[derive(Clone, Debug)]
pub struct Augmenter {
    pub spec: Augment,
    pub seed: u64,
    pub classes: usize,
}

/// Mixed into the seeds so augmentation's draws are not the batch order's.
const EXAMPLE: u64 = 0xa06e_0001;
const BATCH: u64 = 0xa06e_0002;

impl Augmenter {
    /// A batch's features `x` (`[N, C, H, W]`, rows `rows` of the training split) changed
    /// example by example, and, with mixup or CutMix, mixed with one another and `y`'s class
    /// indices made soft targets `[N, classes]`; `batch` is the batch's place in the epoch.
    pub fn apply(
        &self,
        x: &Tensor,
        y: &Tensor,
        rows: &[u32],
        epoch: usize,
        batch: usize,
    ) -> Result<(Tensor, Tensor)> {
        let &[n, c, h, w] = x.dims() else {
            candle_core::bail!("augment takes images [N, C, H, W]; the features are {:?}", x.dims())
        };
        let mut values = x.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let size = c * h * w;
        if size > 0 {
            for (pixels, row) in values.chunks_exact_mut(size).zip(rows) {
                let mut draw = Draw::keyed(&[self.seed, EXAMPLE, epoch as u64, u64::from(*row)]);
                let mut image = Image { pixels, c, h, w };
                self.spec.example(&mut image, &mut draw);
            }
        }
        let mut draw = Draw::keyed(&[self.seed, BATCH, epoch as u64, batch as u64]);
        let mixed = match self.spec.mixing(&mut draw) {
            None => None,
            Some(how) => {
                let labels = y.to_device(&Device::Cpu)?.to_dtype(DType::I64)?.to_vec1::<i64>()?;
                Some(mix::mix(&mut values, (n, c, h, w), &labels, self.classes, how, &mut draw)?)
            }
        };
        let x = Tensor::from_vec(values, (n, c, h, w), &Device::Cpu)?
            .to_dtype(x.dtype())?
            .to_device(x.device())?;
        let y = match mixed {
            None => y.clone(),
            Some(soft) => Tensor::from_vec(soft, (n, self.classes), &Device::Cpu)?.to_device(y.device())?,
        };
        Ok((x, y))
    }
}
