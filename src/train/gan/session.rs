//! Setting up adversarial training: both players built from the spec at the batch size (and
//! the splits' short last batches), checked against each other and the data, with their
//! optimizers, the draws and the loop's configuration.

use std::path::Path;

use super::config::{GanConfig, PlayerConfig};
use super::draws::Seeded;
use super::ema::Ema;
use super::fid::FidProbe;
use super::program::{Adversarial, GridLatent, Player};
use crate::train::config::TrainConfig;
use crate::train::data::{self, Splits};
use crate::train::fit::steps_per_epoch;
use crate::train::run::TrainError;
use crate::train::session::{
    build_model, compile, ground, hold_frozen, looping, trainable, Built, Session, TARGET,
};

/// Everything the loop needs for the GAN `gan` of `spec`.
pub fn prepare(
    spec: &str,
    config: &TrainConfig,
    gan: &GanConfig,
    config_dir: &Path,
    check_memory: bool,
) -> Result<Session<Adversarial>, TrainError> {
    if config.init.is_some() {
        return Err(TrainError::Usage(
            "`init` names one model's weights; a GAN's players start from their own initialisation".into(),
        ));
    }
    let (device, splits, mut notes) = ground(config, config_dir)?;
    // Each player's parameters from its own stream: the two models may share layer paths.
    let build = |p: &PlayerConfig, seed: u64| {
        let slots = check_memory.then(|| optimizer_of(p, config).state_slots());
        let file = p.spec.as_ref().map_or(spec.to_string(), |f| config_dir.join(f).display().to_string());
        build_model(compile(&file, Some(&p.model))?, config, &splits, &device, seed, slots)
    };
    let generator = build(&gan.generator, config.seed)?;
    let discriminator = build(&gan.discriminator, config.seed.wrapping_add(0x9e37_79b9))?;
    // A glob may cover either player's parameters, but must cover some.
    let neither: Vec<String> = generator
        .unmatched_inits
        .iter()
        .filter(|g| discriminator.unmatched_inits.contains(g))
        .cloned()
        .collect();
    let players = [generator.nets.full(), discriminator.nets.full()];
    if let Some(e) = crate::train::init_weights::unmatched_error(&neither, &players) {
        return Err(TrainError::Usage(e));
    }
    let (real, classes) = check_players(&generator, &discriminator, &splits)?;
    let made = first_output_dims(&generator.model).unwrap_or_default();
    let images = made.len() == 4 && matches!(made[1], 1 | 3);
    if !images {
        notes.push(format!(
            "no sample grids: the generator makes {made:?}, not images [n, 1 or 3, height, width]"
        ));
    }
    if gan.loss.penalty().is_some() {
        check_second_order(discriminator.nets.full())?;
    }

    let mut frozen = Vec::new();
    let mut player = |mut built: Built, p: &PlayerConfig| -> Result<(Player, Vec<_>), TrainError> {
        let (params, keys) = trainable(built.nets.full(), &p.frozen)?;
        notes.extend(hold_frozen(&mut built.nets, config, &p.frozen, &keys));
        frozen.extend(keys);
        let optimizer = optimizer_of(p, config).build(params.clone())?;
        let name = built.nets.full().name.clone();
        Ok((Player { name, nets: built.nets, optimizer, clip: p.clip, watch: None }, params))
    };
    let (generator, g_params) = player(generator, &gan.generator)?;
    let (discriminator, _) = player(discriminator, &gan.discriminator)?;
    let ema = gan.ema.map(|decay| Ema::new(decay, &g_params)).transpose()?;
    if config.data.augment.is_some() {
        return Err(TrainError::Usage("data.augment: a GAN's training takes no augmentation yet".into()));
    }
    let (fit, plateau) = looping(config, splits.train.len(), gan.discriminator.steps)?;
    let fid = match &gan.fid {
        Some(f) => {
            let rows = crate::train::fit::used_rows(splits.train.len(), config.batch_size, config.drop_last);
            let steps = steps_per_epoch(rows, config.batch_size, gan.discriminator.steps);
            Some(FidProbe::prepare(f, config_dir, &device, &made, &splits.train.x, config.seed, steps)?)
        }
        None => None,
    };
    let title = format!("{} and {}", generator.name, discriminator.name);
    let program = Adversarial {
        generator,
        discriminator,
        loss: gan.loss.clone(),
        d_steps: gan.discriminator.steps,
        reuse_fake: gan.reuses_fake(),
        label_noise: gan.label_noise,
        real: real.clone(),
        label: classes.map(|_| TARGET.to_string()),
        draws: Box::new(Seeded { seed: config.seed, latent: gan.latent }),
        ema,
        grid: GridLatent {
            seed: config.seed,
            latent: gan.latent,
            // A conditional grid holds as many samples of each class.
            count: classes.map_or(gan.samples, |c| c * (gan.samples / c).max(1)),
            classes,
            range: config.data.rescale.map_or((-1.0, 1.0), |(lo, hi)| (lo as f32, hi as f32)),
            images,
        },
        fid,
    };
    Ok(Session {
        program,
        splits,
        input: real,
        target: TARGET.into(),
        fit,
        plateau,
        frozen,
        notes,
        device,
        title,
    })
}

fn optimizer_of<'a>(
    p: &'a PlayerConfig,
    config: &'a TrainConfig,
) -> &'a crate::train::optim::config::OptimizerConfig {
    p.optimizer.as_ref().unwrap_or(&config.optimizer)
}

/// The discriminator's float input takes the data, and the generator's output has its shape;
/// a conditional GAN's models both take an integer label as well, the data's class. The name
/// of the discriminator's image input, and the number of classes of a conditional GAN.
fn check_players(
    generator: &Built,
    discriminator: &Built,
    splits: &Splits,
) -> Result<(String, Option<usize>), TrainError> {
    let (g, d) = (generator.nets.full(), discriminator.nets.full());
    let usage = |m: String| Err(TrainError::Usage(m));
    let roles = |net: &crate::Lowered, float: &str| {
        let floats: Vec<_> = net.inputs().iter().filter(|i| i.dtype.is_float()).collect();
        let labels = net.inputs().len() - floats.len();
        match (floats.as_slice(), labels) {
            ([one], 0 | 1) => Ok(((*one).clone(), labels == 1)),
            _ => Err(TrainError::Usage(format!(
                "{} takes {} inputs; a GAN's model takes one float input ({float}) and, in a \
                 conditional GAN, one integer input (the class)",
                net.name,
                net.inputs().len()
            ))),
        }
    };
    let (latent, g_label) = roles(g, "the latent")?;
    let (image, d_label) = roles(d, "the image")?;
    if g_label != d_label {
        let (with, without) = if g_label { (&g.name, &d.name) } else { (&d.name, &g.name) };
        return usage(format!(
            "{with} takes a class label and {without} does not: in a conditional GAN both take it"
        ));
    }
    data::check_fits(&splits.train, &image)?;
    let made = first_output_dims(&generator.model);
    if made.as_deref() != Some(image.dims.as_slice()) {
        return usage(format!(
            "the generator {} makes {:?} from its input `{}`, and the discriminator {} takes {:?}: \
             they must match",
            g.name,
            made.unwrap_or_default(),
            latent.name,
            d.name,
            image.dims
        ));
    }
    let classes = match g_label {
        false => None,
        true => {
            let y = &splits.train.y;
            if y.dtype() != candle_core::DType::I64 || y.rank() != 1 {
                return usage("a conditional GAN takes its labels from the data's `target` classes".into());
            }
            let max = y.max(0)?.to_scalar::<i64>()?;
            Some(usize::try_from(max + 1).unwrap_or(1))
        }
    };
    Ok((image.name.clone(), classes))
}

/// A gradient penalty differentiates the discriminator's input gradient again: every layer of
/// it must give a second-order gradient, or the penalty would silently lose its share.
fn check_second_order(d: &crate::Lowered) -> Result<(), TrainError> {
    let blockers = d.second_order_blockers();
    if blockers.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = blockers.iter().map(|(path, kind)| format!("`{path}` ({kind})")).collect();
    Err(TrainError::Usage(format!(
        "the gradient penalty differentiates {}'s gradient again, and these layers have no checked \
         second-order gradient: {}; use a loss without a penalty (bce, lsgan or hinge without `r1`, or wgan) or other layers",
        d.name,
        list.join(", ")
    )))
}

/// The bound shape of a model's first output.
fn first_output_dims(model: &crate::Model) -> Option<Vec<usize>> {
    let g = model.graph();
    let (_, t) = g.outputs.first()?;
    let bindings = g.bindings();
    g.tensor_type(*t)?.shape.iter().map(|d| d.eval(&bindings).and_then(|v| usize::try_from(v).ok())).collect()
}
