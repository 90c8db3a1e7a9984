//! Adversarial training as a [`Program`]: two players, each a model (lowered at every batch
//! size the data needs) with its own optimizer; per iteration `steps` discriminator updates,
//! each on its own real batch and a fresh fake one, then one generator update.
//!
//! The discriminator sees the real and the fake batch in two passes, as PyTorch's reference
//! loops do (so batch norm normalises each alone). The fake batch it learns from is detached
//! from the generator; the generator's update back-propagates through the discriminator,
//! whose gradients from that pass are dropped.

use std::collections::{BTreeMap, HashMap};

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use super::draws::{Draw, Draws, Kind, Update};
use super::ema::Ema;
use super::loss::{wasserstein, AdversarialLoss, PenaltyAt};
use crate::lower::Pass;
use crate::train::batch::Batch;
use crate::train::config::Clip;
use crate::train::fit::FitError;
use crate::train::grads::clip_grads;
use crate::train::nets::Nets;
use crate::train::optim::Optimizer;
use crate::train::program::{Program, Tally};
use crate::train::supervised::scalar;

/// What a test gives a player to see its gradients by parameter key.
pub type GradientWatch = Box<dyn FnMut(&BTreeMap<String, Tensor>) + Send>;

/// One model of the game and its training.
pub struct Player {
    /// The model's name: its weights file, and its namespace in checkpoints.
    pub name: String,
    pub nets: Nets,
    pub optimizer: Box<dyn Optimizer>,
    pub clip: Option<Clip>,
    /// Shown each update's gradients by parameter key, before clipping (what a test compares).
    pub watch: Option<GradientWatch>,
}

impl Player {
    /// The model lowered for `rows`, and the shape of its float input (the latent of a
    /// generator, the image of a discriminator) there.
    fn input(&self, rows: usize) -> candle_core::Result<(&crate::Lowered, Vec<usize>)> {
        let net = self.nets.for_rows(rows)?;
        match net.inputs().iter().find(|i| i.dtype.is_float()) {
            Some(i) => Ok((net, i.dims.clone())),
            None => candle_core::bail!("model {} has no float input", self.name),
        }
    }

    /// The model's inputs in its order: `x` to the float one, `label` to the integer one (a
    /// conditional GAN's class).
    fn feed(net: &crate::Lowered, x: &Tensor, label: Option<&Tensor>) -> candle_core::Result<Vec<Tensor>> {
        net.inputs()
            .iter()
            .map(|i| match (i.dtype.is_float(), label) {
                (true, _) => Ok(x.clone()),
                (false, Some(l)) => Ok(l.clone()),
                (false, None) => {
                    candle_core::bail!("model {} takes a label `{}` and none was given", net.name, i.name)
                }
            })
            .collect()
    }

    /// The first output for `x` (and `label`), in training mode; `differentiable`: its
    /// gradients can be differentiated again.
    fn run(&self, x: &Tensor, label: Option<&Tensor>, differentiable: bool) -> candle_core::Result<Tensor> {
        let net = self.nets.for_rows(x.dim(0)?)?;
        let mut pass = Pass { train: true, differentiable, ..Pass::default() };
        let outs = net.forward_with(&Self::feed(net, x, label)?, &mut pass)?;
        outs.into_iter()
            .next()
            .ok_or_else(|| candle_core::Error::msg(format!("model {} has no output", self.name)))
    }

    fn update(&mut self, loss: &Tensor, rows: usize) -> Result<(), FitError> {
        let mut grads: GradStore = self.nets.for_rows(rows)?.backward(loss)?;
        if let Some(watch) = &mut self.watch {
            let params = self.optimizer.params();
            let keyed =
                params.iter().filter_map(|p| Some((p.key.clone(), grads.get(p.var.as_tensor())?.clone())));
            watch(&keyed.collect());
        }
        if let Some(clip) = self.clip {
            clip_grads(&mut grads, self.optimizer.as_ref(), clip)?;
        }
        self.optimizer.step(&grads)?;
        Ok(())
    }
}

/// A generator and a discriminator trained against each other.
pub struct Adversarial {
    pub generator: Player,
    pub discriminator: Player,
    pub loss: AdversarialLoss,
    /// Discriminator updates per iteration, each on its own batch.
    pub d_steps: usize,
    /// The generator's update reuses the last discriminator update's fake batch.
    pub reuse_fake: bool,
    pub label_noise: f64,
    /// The batch tensor holding the real samples.
    pub real: String,
    /// The batch tensor holding their classes, for a conditional GAN (both models take it).
    pub label: Option<String>,
    pub draws: Box<dyn Draws>,
    pub ema: Option<Ema>,
    /// The fixed latent batch each epoch's sample grid is drawn from.
    pub grid: GridLatent,
    /// The Frechet distance to the real images, measured at the end of some epochs.
    pub fid: Option<super::fid::FidProbe>,
}

/// Where the sample grid's latent batch comes from, and its size.
#[derive(Clone, Copy, Debug)]
pub struct GridLatent {
    pub seed: u64,
    pub latent: super::config::Latent,
    pub count: usize,
    /// The classes of a conditional GAN: the grid shows `count / classes` samples of each.
    pub classes: Option<usize>,
    /// The values drawn black and white: the range the data was rescaled to.
    pub range: (f32, f32),
    /// Whether the samples are images a grid can show (`[n, 1 or 3, h, w]`); no grid is
    /// written otherwise.
    pub images: bool,
}

/// What one discriminator update measured.
struct Measured {
    loss: f64,
    real: f64,
    fake: f64,
    penalty: f64,
    wasserstein: f64,
}

impl Adversarial {
    /// The names of the figures a step reports, `d_loss` first (the loop's "loss").
    /// `fid`: the run measures a FID (at the ends of epochs: NaN in other steps' rows).
    pub fn figure_names(loss: &AdversarialLoss, fid: bool) -> Vec<String> {
        let mut names = vec!["d_loss", "g_loss", "d_real", "d_fake"];
        if loss.penalty().is_some() {
            names.push("penalty");
        }
        if loss.is_wasserstein() {
            names.push("wasserstein");
        }
        if fid {
            names.push("fid");
        }
        names.into_iter().map(String::from).collect()
    }

    fn draw(
        &mut self,
        iteration: u64,
        update: Update,
        kind: Kind,
        dims: &[usize],
        like: &Tensor,
    ) -> candle_core::Result<Tensor> {
        self.draws.draw(Draw { iteration, update, kind }, dims, like.dtype(), like.device())
    }

    /// A fake batch of `rows` (of classes `label`) from a latent drawn for `update`, with its
    /// graph (in training mode).
    fn fake(
        &mut self,
        iteration: u64,
        update: Update,
        label: Option<&Tensor>,
        rows: usize,
        like: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let (_, dims) = self.generator.input(rows)?;
        let z = self.draw(iteration, update, Kind::Latent, &dims, like)?;
        self.generator.run(&z, label, false)
    }

    /// The classes of `batch`'s rows, for a conditional GAN.
    fn labels(&self, batch: &Batch) -> candle_core::Result<Option<Tensor>> {
        self.label.as_ref().map(|name| batch.get(name).cloned()).transpose()
    }

    /// The targets of a real and a fake batch, each flipped with probability `label_noise`.
    fn targets(
        &mut self,
        iteration: u64,
        j: usize,
        rows: usize,
        like: &Tensor,
    ) -> candle_core::Result<Option<(Tensor, Tensor)>> {
        let Some((mut real, mut fake)) = self.loss.targets(rows) else { return Ok(None) };
        if self.label_noise > 0.0 {
            let coins = self.draw(
                iteration,
                Update::Discriminator(j),
                Kind::Uniform("label_noise"),
                &[2, rows],
                like,
            )?;
            let coins = coins.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?;
            for (labels, coins) in [(&mut real, &coins[0]), (&mut fake, &coins[1])] {
                let (t_real, t_fake) = self.loss.targets(1).unwrap_or_default();
                for (l, c) in labels.iter_mut().zip(coins) {
                    if *c < self.label_noise {
                        // A flipped label: a real one becomes the fake target and the other way.
                        *l = if (*l - t_fake[0]).abs() < 1e-12 { t_real[0] } else { t_fake[0] };
                    }
                }
            }
        }
        let tensor = |v: Vec<f64>| Tensor::new(v, like.device())?.to_dtype(like.dtype());
        Ok(Some((tensor(real)?, tensor(fake)?)))
    }

    /// The penalty on the discriminator's input gradient at points near `real` (and `fake`).
    fn penalty(
        &mut self,
        iteration: u64,
        j: usize,
        real: &Tensor,
        fake: &Tensor,
        label: Option<&Tensor>,
    ) -> candle_core::Result<Option<Tensor>> {
        let Some(penalty) = self.loss.penalty() else { return Ok(None) };
        let rows = real.dim(0)?;
        let mut per_row = vec![1; real.rank()];
        per_row[0] = rows;
        let update = Update::Discriminator(j);
        let mut eps = || self.draw(iteration, update, Kind::Uniform("interpolation"), &per_row, real);
        let point = match penalty.at {
            PenaltyAt::Real => real.clone(),
            PenaltyAt::Between => {
                let eps = eps()?;
                (real.broadcast_mul(&eps)? + fake.broadcast_mul(&(eps.neg()? + 1.0)?)?)?
            }
            PenaltyAt::NearReal => {
                let eps = eps()?;
                let u = self.draw(iteration, update, Kind::Uniform("perturbation"), real.dims(), real)?;
                let std = real.flatten_all()?.to_dtype(candle_core::DType::F64)?;
                let n = std.dim(0)? as f64;
                let mean = std.mean_all()?;
                let var = (std.broadcast_sub(&mean)?.sqr()?.sum_all()? / (n - 1.0).max(1.0))?;
                let delta = (u * (0.5 * scalar(&var)?.sqrt()))?;
                (real + delta.broadcast_mul(&eps)?)?
            }
        };
        let point = Var::from_tensor(&point.detach())?;
        let scores = self.discriminator.run(point.as_tensor(), label, true)?;
        let grads = crate::lower::grad2::differentiable_grads(&scores.sum_all()?)?;
        let gradient = grads.get(point.as_tensor()).ok_or_else(|| {
            candle_core::Error::msg("the discriminator's score does not depend on its input")
        })?;
        Ok(Some(penalty.of(gradient)?))
    }

    fn discriminator_update(
        &mut self,
        iteration: u64,
        j: usize,
        batch: &Batch,
    ) -> Result<(Measured, Tensor), FitError> {
        let real = batch.get(&self.real)?.clone();
        let label = self.labels(batch)?;
        let rows = batch.rows;
        let fake = self.fake(iteration, Update::Discriminator(j), label.as_ref(), rows, &real)?;
        let real_scores = self.discriminator.run(&real, label.as_ref(), false)?;
        let fake_scores = self.discriminator.run(&fake.detach(), label.as_ref(), false)?;
        let targets = self.targets(iteration, j, rows, &real)?;
        let adversarial =
            self.loss.discriminator(&real_scores, &fake_scores, targets.as_ref().map(|(r, f)| (r, f)))?;
        let penalty = self.penalty(iteration, j, &real, &fake.detach(), label.as_ref())?;
        let total = match &penalty {
            Some(p) => (&adversarial + p)?,
            None => adversarial,
        };
        let measured = Measured {
            loss: scalar(&total)?,
            real: self.loss.mean_score(&real_scores)?,
            fake: self.loss.mean_score(&fake_scores)?,
            penalty: penalty.as_ref().map_or(Ok(0.0), scalar)?,
            wasserstein: scalar(&wasserstein(&real_scores, &fake_scores)?)?,
        };
        finite(measured.loss, "discriminator")?;
        self.discriminator.update(&total, rows)?;
        if let Some(c) = self.loss.weight_clip() {
            for p in self.discriminator.optimizer.params() {
                p.var.set(&p.var.as_tensor().clamp(-c, c)?)?;
            }
        }
        Ok((measured, fake))
    }

    fn generator_update(
        &mut self,
        iteration: u64,
        fake: Option<Tensor>,
        last: &Batch,
    ) -> Result<f64, FitError> {
        let label = self.labels(last)?;
        let (rows, like) = (last.rows, last.get(&self.real)?.clone());
        let fake = match fake {
            Some(f) => f,
            None => self.fake(iteration, Update::Generator, label.as_ref(), rows, &like)?,
        };
        let loss = self.loss.generator(&self.discriminator.run(&fake, label.as_ref(), false)?)?;
        let value = scalar(&loss)?;
        finite(value, "generator")?;
        self.generator.update(&loss, last.rows)?;
        if let Some(ema) = &mut self.ema {
            ema.update(self.generator.optimizer.params())?;
        }
        Ok(value)
    }
}

impl Adversarial {
    /// The generator's samples of the fixed grid latent, in evaluation mode (with its moving
    /// average's weights when there is one): `[count, ...]` as its output.
    pub fn grid_samples(&self) -> candle_core::Result<Tensor> {
        self.fixed_samples(self.grid.count)
    }

    /// The first `count` samples of the grid's latent stream, as [`Self::grid_samples`]: the
    /// same latents every epoch and on resume.
    fn fixed_samples(&self, count: usize) -> candle_core::Result<Tensor> {
        let b = self.generator.nets.batch_size();
        let (net, mut dims) = self.generator.input(b)?;
        let chunks = count.div_ceil(b);
        dims[0] = chunks * b;
        let z =
            super::draws::grid_latent(self.grid.seed, self.grid.latent, &dims, net.dtype(), net.device())?;
        // A conditional grid: sample i is of class i % classes, a column per class.
        let labels = match self.grid.classes {
            Some(c) => {
                Some(Tensor::from_vec((0..dims[0]).map(|i| (i % c) as i64).collect(), dims[0], net.device())?)
            }
            None => None,
        };
        let run = || -> candle_core::Result<Tensor> {
            let parts = (0..chunks)
                .map(|i| {
                    let label = labels.as_ref().map(|l| l.narrow(0, i * b, b)).transpose()?;
                    let inputs = Player::feed(net, &z.narrow(0, i * b, b)?, label.as_ref())?;
                    let outs = net.infer(&inputs, false)?;
                    outs.into_iter()
                        .next()
                        .ok_or_else(|| candle_core::Error::msg("the generator has no output"))
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            Tensor::cat(&parts, 0)?.narrow(0, 0, count)
        };
        match &self.ema {
            Some(ema) => ema.swapped_in(self.generator.optimizer.params(), run),
            None => run(),
        }
    }
}

fn finite(value: f64, whose: &str) -> Result<(), FitError> {
    if value.is_finite() {
        return Ok(());
    }
    let layer = Some((format!("the {whose}'s loss"), "GAN".to_string()));
    Err(FitError::NonFinite { value, step: 0, epoch: 0, layer })
}

impl Program for Adversarial {
    fn figures(&self) -> Vec<String> {
        Adversarial::figure_names(&self.loss, self.fid.is_some())
    }

    fn batch_size(&self) -> usize {
        self.discriminator.nets.batch_size()
    }

    fn batches_per_step(&self) -> usize {
        self.d_steps
    }

    fn base_learning_rate(&mut self) -> f64 {
        *self.discriminator.optimizer.lr_mut()
    }

    fn set_learning_rate(&mut self, lr: f64) {
        // Schedules scale each player's own rate by the same factor.
        let base = *self.discriminator.optimizer.lr_mut();
        let factor = if base > 0.0 { lr / base } else { 1.0 };
        self.discriminator.optimizer.set_learning_rate(lr);
        let g = *self.generator.optimizer.lr_mut();
        self.generator.optimizer.set_learning_rate(g * factor);
    }

    fn step(&mut self, group: &[Batch], iteration: u64) -> Result<Tally, FitError> {
        let mut sums = [0.0f64; 6];
        let mut rows_seen = 0usize;
        let mut last = None;
        for (j, batch) in group.iter().enumerate() {
            let (m, fake) = self.discriminator_update(iteration, j, batch)?;
            let r = batch.rows as f64;
            for (s, v) in sums.iter_mut().zip([m.loss, 0.0, m.real, m.fake, m.penalty, m.wasserstein]) {
                *s += v * r;
            }
            rows_seen += batch.rows;
            last = Some((fake, batch));
        }
        let Some((fake, batch)) = last else { return Ok(Tally::new(self.figures().len() - 1)) };
        let rows = batch.rows;
        let g_loss = self.generator_update(iteration, self.reuse_fake.then_some(fake), batch)?;
        let seen = rows_seen as f64;
        let mut counts = vec![(g_loss * rows as f64, rows as f64), (sums[2], seen), (sums[3], seen)];
        if self.loss.penalty().is_some() {
            counts.push((sums[4], seen));
        }
        if self.loss.is_wasserstein() {
            counts.push((sums[5], seen));
        }
        if let Some(fid) = &self.fid {
            // One measurement at the epoch's end: the epoch's figure is it alone.
            let measured = match fid.due(iteration) {
                true => (fid.distance(&self.fixed_samples(fid.samples)?)?, 1.0),
                false => (0.0, 0.0),
            };
            counts.push(measured);
        }
        Ok(Tally { loss: sums[0], samples: rows_seen, counts })
    }

    fn evaluate(&self, _batches: &[Batch]) -> Result<Tally, FitError> {
        // A GAN has no held-out loss to judge it by; its samples are what an epoch shows.
        Ok(Tally::new(self.figures().len() - 1))
    }

    fn weights(&self) -> BTreeMap<String, Tensor> {
        let mut all = BTreeMap::new();
        for p in [&self.generator, &self.discriminator] {
            for (k, t) in p.nets.full().params().state_dict() {
                all.insert(format!("{}.{k}", p.name), t);
            }
        }
        all
    }

    fn weight_files(&self) -> Vec<(String, BTreeMap<String, Tensor>)> {
        let mut generator = self.generator.nets.full().params().state_dict();
        if let Some(ema) = &self.ema {
            generator.extend(ema.averages());
        }
        vec![
            (self.generator.name.clone(), generator),
            (self.discriminator.name.clone(), self.discriminator.nets.full().params().state_dict()),
        ]
    }

    fn optimizer_state(&self) -> BTreeMap<String, Tensor> {
        let mut all = BTreeMap::new();
        for p in [&self.generator, &self.discriminator] {
            for (k, t) in p.optimizer.state() {
                all.insert(format!("{}.{k}", p.name), t);
            }
        }
        if let Some(ema) = &self.ema {
            all.extend(ema.averages().into_iter().map(|(k, t)| (format!("{}.{k}", Ema::NAMESPACE), t)));
        }
        all
    }

    fn restore(
        &mut self,
        weights: &HashMap<String, Tensor>,
        optimizer: Option<&BTreeMap<String, Tensor>>,
    ) -> Result<(), FitError> {
        for p in [&mut self.generator, &mut self.discriminator] {
            let prefix = format!("{}.", p.name);
            let own: HashMap<String, Tensor> = weights
                .iter()
                .filter_map(|(k, t)| k.strip_prefix(&prefix).map(|k| (k.to_string(), t.clone())))
                .collect();
            p.nets.full().params().load_map(&own, false)?;
            if let Some(state) = optimizer {
                let own: BTreeMap<String, Tensor> = state
                    .iter()
                    .filter_map(|(k, t)| k.strip_prefix(&prefix).map(|k| (k.to_string(), t.clone())))
                    .collect();
                p.optimizer.load_state(&own)?;
            }
        }
        if let (Some(ema), Some(state)) = (&mut self.ema, optimizer) {
            let prefix = format!("{}.", Ema::NAMESPACE);
            ema.restore(state.iter().filter_map(|(k, t)| k.strip_prefix(&prefix).map(|k| (k, t))))?;
        }
        Ok(())
    }

    fn epoch_files(&self, epoch: usize) -> Result<Vec<(std::path::PathBuf, Vec<u8>)>, FitError> {
        if !self.grid.images {
            return Ok(Vec::new());
        }
        let samples = self.grid_samples()?;
        let png = crate::sample::write::png_grid(&samples, self.grid.range, self.grid.classes)
            .map_err(|e| FitError::Hook(format!("cannot draw the epoch's samples: {e}")))?;
        Ok(vec![(format!("samples/epoch_{epoch:03}.png").into(), png)])
    }

    fn passes(&self) -> Vec<u64> {
        vec![self.generator.nets.full().params().passes(), self.discriminator.nets.full().params().passes()]
    }

    fn set_passes(&mut self, passes: &[u64]) {
        for (p, n) in [&self.generator, &self.discriminator].into_iter().zip(passes) {
            p.nets.full().params().set_passes(*n);
        }
    }
}
