//! The random draws of adversarial training, apart from the data: latent batches, the
//! interpolation weights of a gradient penalty, label noise. Each draw is named by where it
//! is used, and the seeded source derives it from the run's seed, the iteration and that name
//! alone, so a resumed run draws what an uninterrupted one would have without saving a random
//! state. A test replays recorded draws (the PyTorch fixtures store every one) through the
//! same program by giving it another [`Draws`].

use candle_core::{DType, Device, Result, Tensor};

use super::config::Latent;
use crate::lower::random;

/// Which update of an iteration a draw is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// The `j`-th discriminator update (0-based).
    Discriminator(usize),
    Generator,
}

/// What is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A latent batch (normal or uniform on [-1, 1], as configured).
    Latent,
    /// Uniform on [0, 1): a penalty's interpolation weights, label-noise coins.
    Uniform(&'static str),
}

/// One draw: its iteration (0-based, the run's step count before it), update and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    pub iteration: u64,
    pub update: Update,
    pub kind: Kind,
}

/// A source of draws.
pub trait Draws: Send {
    /// `draw` as a tensor of `dims` in `dtype`.
    fn draw(&mut self, draw: Draw, dims: &[usize], dtype: DType, device: &Device) -> Result<Tensor>;
}

/// The draws of a run seeded `seed`: each one from its own stream, named by the draw.
pub struct Seeded {
    pub seed: u64,
    pub latent: Latent,
}

impl Draws for Seeded {
    fn draw(&mut self, draw: Draw, dims: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let update = match draw.update {
            Update::Discriminator(j) => format!("d{j}"),
            Update::Generator => "g".into(),
        };
        let what = match draw.kind {
            Kind::Latent => "latent",
            Kind::Uniform(name) => name,
        };
        let stream = format!("gan.{update}.{what}");
        random::scoped(self.seed, &stream, draw.iteration, || match (draw.kind, self.latent) {
            (Kind::Latent, Latent::Normal) => random::normal(dims, dtype, device),
            (Kind::Latent, Latent::Uniform) => random::uniform(dims, dtype, device)?.affine(2.0, -1.0),
            (Kind::Uniform(_), _) => random::uniform(dims, dtype, device),
        })
    }
}

/// The fixed latent batch each epoch's sample grid is drawn from: the same every epoch and
/// on resume, and apart from every training draw.
pub fn grid_latent(
    seed: u64,
    latent: Latent,
    dims: &[usize],
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    random::scoped(seed, "gan.grid.latent", 0, || match latent {
        Latent::Normal => random::normal(dims, dtype, device),
        Latent::Uniform => random::uniform(dims, dtype, device)?.affine(2.0, -1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latent(seed: u64, iteration: u64, update: Update) -> Vec<f32> {
        let draw = Draw { iteration, update, kind: Kind::Latent };
        let mut s = Seeded { seed, latent: Latent::Normal };
        s.draw(draw, &[6], DType::F32, &Device::Cpu).unwrap().to_vec1().unwrap()
    }

    #[test]
    fn a_draw_depends_on_the_seed_the_iteration_and_its_use_only() {
        assert_eq!(latent(1, 3, Update::Generator), latent(1, 3, Update::Generator));
        assert_ne!(latent(1, 3, Update::Generator), latent(1, 4, Update::Generator));
        assert_ne!(latent(1, 3, Update::Generator), latent(1, 3, Update::Discriminator(0)));
        assert_ne!(latent(1, 3, Update::Discriminator(0)), latent(1, 3, Update::Discriminator(1)));
        assert_ne!(latent(1, 3, Update::Generator), latent(2, 3, Update::Generator));
        let mut s = Seeded { seed: 1, latent: Latent::Uniform };
        let d = Draw { iteration: 0, update: Update::Generator, kind: Kind::Latent };
        let u: Vec<f32> = s.draw(d, &[1000], DType::F32, &Device::Cpu).unwrap().to_vec1().unwrap();
        assert!(u.iter().all(|v| (-1.0..1.0).contains(v)) && u.iter().any(|v| *v < -0.5));
    }
}
