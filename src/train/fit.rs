//! The training loop: epochs of shuffled mini-batches, an optimizer step per batch with the
//! scheduled rate, and validation loss and accuracy after each epoch.
//!
//! A lowered model has its batch size bound when it is built, so the batch size is the
//! model's, and both splits must divide into whole batches (a clear error otherwise).

use candle_core::{DType, Result, Tensor, D};

use super::data::Dataset;
use super::loss::cross_entropy;
use super::optim::Optimizer;
use super::schedule::Schedule;
use crate::Lowered;

#[derive(Clone, Debug)]
pub struct FitConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Seeds the batch order of each epoch (`seed + epoch`).
    pub seed: u64,
    /// Where the classes are in the model's output ((N, C): 1).
    pub class_axis: usize,
    pub schedule: Schedule,
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochStats {
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_accuracy: f64,
}

/// Train `net` on `train` for `config.epochs`, validating on `val` after each epoch.
pub fn fit(
    net: &Lowered,
    optimizer: &mut dyn Optimizer,
    train: &Dataset,
    val: &Dataset,
    config: &FitConfig,
    on_epoch: &mut dyn FnMut(&EpochStats, &dyn Optimizer) -> Result<()>,
) -> Result<Vec<EpochStats>> {
    let batch = batch_size(net)?;
    if batch != config.batch_size {
        candle_core::bail!(
            "the model was built for batches of {batch}, the configuration asks for {}",
            config.batch_size
        );
    }
    for (name, d) in [("training", train), ("validation", val)] {
        if d.len() % batch != 0 {
            candle_core::bail!(
                "the {name} split has {} rows, not a whole number of batches of {batch}",
                d.len()
            );
        }
    }
    let base_lr = *optimizer.lr_mut();
    let mut history = Vec::with_capacity(config.epochs);
    let mut step = 0u64;
    for epoch in 0..config.epochs {
        let (mut loss_sum, mut seen) = (0.0, 0usize);
        let mut lr = base_lr;
        for batch in train.batches(config.batch_size, config.seed.wrapping_add(epoch as u64))? {
            lr = config.schedule.lr(base_lr, step);
            optimizer.set_learning_rate(lr);
            let out = forward(net, &batch.x, true)?;
            let loss = cross_entropy(&out, &batch.y, config.class_axis, 0.0)?;
            let grads = net.backward(&loss).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            optimizer.step(&grads)?;
            loss_sum += scalar(&loss)? * batch.len() as f64;
            seen += batch.len();
            step += 1;
        }
        let (val_loss, val_accuracy) = evaluate(net, val, config.class_axis)?;
        let stats = EpochStats {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            val_loss,
            val_accuracy,
        };
        on_epoch(&stats, optimizer)?;
        history.push(stats);
    }
    Ok(history)
}

/// Loss and top-1 accuracy in eval mode, batch by batch.
pub fn evaluate(net: &Lowered, data: &Dataset, class_axis: usize) -> Result<(f64, f64)> {
    if data.is_empty() {
        return Ok((f64::NAN, f64::NAN));
    }
    let batch = batch_size(net)?;
    let (mut loss, mut correct) = (0.0, 0.0);
    for start in (0..data.len()).step_by(batch) {
        let rows: Vec<u32> = (start as u32..(start + batch).min(data.len()) as u32).collect();
        let part = data.select(&rows)?;
        let out = forward(net, &part.x, false)?;
        loss += scalar(&cross_entropy(&out, &part.y, class_axis, 0.0)?)? * part.len() as f64;
        let predicted = out.argmax(class_axis)?.to_dtype(DType::I64)?;
        correct += predicted.eq(&part.y)?.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()?;
    }
    Ok((loss / data.len() as f64, correct / data.len() as f64))
}

/// The leading dim of the model's first input, as bound when it was built.
fn batch_size(net: &Lowered) -> Result<usize> {
    match net.inputs().first().and_then(|i| i.dims.first()) {
        Some(b) => Ok(*b),
        None => candle_core::bail!("the model has no batched input"),
    }
}

fn forward(net: &Lowered, x: &Tensor, train: bool) -> Result<Tensor> {
    let mut outs =
        net.forward(std::slice::from_ref(x), train).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    if outs.is_empty() {
        candle_core::bail!("the model has no output");
    }
    Ok(outs.remove(0))
}

fn scalar(t: &Tensor) -> Result<f64> {
    t.to_dtype(DType::F64)?.flatten_all()?.max(D::Minus1)?.to_scalar::<f64>()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use candle_core::Device;

    use super::*;
    use crate::train::optim::{Adam, AdamConfig, Param};
    use crate::{Model, Options};

    /// The history of a 4-16-3 MLP trained on Iris split with `split_seed`.
    fn iris_run(split_seed: u64) -> Vec<EpochStats> {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv"));
        let data = Dataset::from_csv(path, "species", &Device::Cpu).unwrap();
        let (train, mut val) = data.split(0.2, split_seed).unwrap();
        let train = train.standardize(&mut [&mut val]).unwrap();
        let spec =
            "dim N = 1\nmodel Iris {\n input x: [N, 4]\n output y = x |> [Linear(16), ReLU, Linear(3)]\n}";
        let opts = Options { bind: vec![("N".into(), 10)], ..Default::default() };
        let net = Model::from_source("iris.wick", spec, &opts)
            .unwrap()
            .build_seeded(&Device::Cpu, DType::F32, 0)
            .unwrap();
        let mut adam = Adam::new(Param::trainable(&net), AdamConfig { lr: 0.01, ..AdamConfig::adam() });
        let config =
            FitConfig { epochs: 60, batch_size: 10, seed: 0, class_axis: 1, schedule: Schedule::Constant };
        let history = fit(&net, &mut adam, &train, &val, &config, &mut |_, _| Ok(())).unwrap();
        let odd = FitConfig { batch_size: 16, ..config };
        let e = fit(&net, &mut adam, &train, &val, &odd, &mut |_, _| Ok(())).unwrap_err().to_string();
        assert!(e.contains("built for batches of 10"), "{e}");
        history
    }

    #[test]
    fn an_mlp_learns_iris_to_95_percent_validation_accuracy() {
        // 30 validation rows make one split's figure coarse (one error is 3.3 points), so the
        // claim is about the median over six splits; none may fall below 85%.
        let mut finals: Vec<f64> = (0..6)
            .map(|seed| {
                let h = iris_run(seed);
                assert!(h.last().unwrap().train_loss < h[0].train_loss / 3.0, "{h:#?}");
                h.last().unwrap().val_accuracy
            })
            .collect();
        finals.sort_by(f64::total_cmp);
        assert!(finals[0] >= 0.85, "{finals:?}");
        assert!((finals[2] + finals[3]) / 2.0 >= 0.95, "{finals:?}");
    }
}
