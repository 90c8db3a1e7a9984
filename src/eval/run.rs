//! A model run over a data set in eval mode, batch by batch in file order, its loss averaged
//! over the examples and its outputs gathered into the figures its loss calls for.

use candle_core::{DType, Device, Result, Tensor};

use super::metrics::{argmax, in_top_k, roc_auc, Confusion, Regression};
use super::{ClassRow, OutputScores, Task, TopK};
use crate::train::batch::Feed;
use crate::train::nets::Nets;
use crate::train::objective::LossConfig;
use crate::train::supervised::{scalar, Objective};

/// Top-k accuracy is reported with this k when the model has more classes than it.
const TOP_K: usize = 5;

/// An evaluation's loss and each scored output's figures.
#[derive(Clone, Debug)]
pub struct Evaluated {
    /// The weighted sum of the objectives' mean losses (training's validation `loss`).
    pub loss: f64,
    pub examples: usize,
    /// Per objective, in order: its output's figures.
    pub outputs: Vec<OutputScores>,
}

/// Runs `nets` (in eval mode) on every example of `feed`, in order, each input fed by its name,
/// and scores the output each objective reads against its target. `names`: the class names, by
/// index (recorded string labels), used when they are as many as an output's classes.
pub fn evaluate(
    nets: &Nets,
    feed: &Feed,
    objectives: &[Objective],
    names: Option<&[String]>,
) -> Result<Evaluated> {
    let mut gathered: Vec<(Gathered, f64)> =
        objectives.iter().map(|o| (Gathered::new(&o.loss), 0.0)).collect();
    for batch in feed.batches(nets.batch_size(), None)? {
        let net = nets.for_rows(batch.rows)?;
        let inputs = net.inputs().iter().map(|i| batch.get(&i.name).cloned()).collect::<Result<Vec<_>>>()?;
        let outs = net.infer(&inputs, false)?;
        for (objective, (gathered, total)) in objectives.iter().zip(gathered.iter_mut()) {
            let at = net.output_names().iter().position(|n| *n == objective.output).ok_or_else(|| {
                candle_core::Error::msg(format!("model {} has no output `{}`", net.name, objective.output))
            })?;
            let target = batch.get(&objective.target)?;
            *total += scalar(&objective.loss.compute(&outs[at..], target)?)? * batch.rows as f64;
            gathered.add(&outs[at].to_device(&Device::Cpu)?, &target.to_device(&Device::Cpu)?)?;
        }
    }
    let examples = feed.rows().max(1) as f64;
    let mut loss = 0.0;
    let outputs = (objectives.iter().zip(gathered))
        .map(|(objective, (gathered, total))| {
            loss += objective.weight * total / examples;
            let mut scores = gathered.scores(&objective.output, names);
            // A loss per output reports each output's own; the one loss is the total.
            scores.loss = objective.labelled.then_some(total / examples);
            scores
        })
        .collect();
    Ok(Evaluated { loss, examples: feed.rows(), outputs })
}

/// What the batches so far gave, by task.
enum Gathered {
    /// Per example (or pixel): the confusion, top-k hits, and for two classes the positive
    /// class's margin (for ROC-AUC).
    Classes {
        axis: usize,
        confusion: Option<Confusion>,
        top_hits: u64,
        margins: Vec<(f32, bool)>,
        skipped: u64,
        pixels: bool,
        /// The loss's `ignore_index`: targets equal to it name no class, as in training.
        ignore: Option<i64>,
    },
    Binary {
        logits: bool,
        confusion: Confusion,
        scores: Vec<(f32, bool)>,
    },
    Regression(Option<Regression>),
    LossOnly,
}

impl Gathered {
    fn new(loss: &LossConfig) -> Gathered {
        match loss {
            LossConfig::CrossEntropy { class_axis, .. } | LossConfig::Nll { class_axis } => {
                Gathered::Classes {
                    axis: *class_axis,
                    confusion: None,
                    top_hits: 0,
                    margins: Vec::new(),
                    skipped: 0,
                    pixels: false,
                    ignore: loss.ignore_index(),
                }
            }
            LossConfig::BceWithLogits | LossConfig::Focal { .. } => {
                Gathered::Binary { logits: true, confusion: Confusion::new(2), scores: Vec::new() }
            }
            LossConfig::Bce => {
                Gathered::Binary { logits: false, confusion: Confusion::new(2), scores: Vec::new() }
            }
            LossConfig::Mse | LossConfig::L1 | LossConfig::SmoothL1 { .. } => Gathered::Regression(None),
            LossConfig::Vae { .. } => Gathered::LossOnly,
        }
    }

    /// One batch's output and targets (on the CPU).
    fn add(&mut self, out: &Tensor, target: &Tensor) -> Result<()> {
        match self {
            Gathered::Classes { axis, confusion, top_hits, margins, skipped, pixels, ignore } => {
                let rank = out.rank();
                let classes = out.dim(*axis)?;
                // Classes last, every other axis in order: rows of scores, as the targets run.
                let order: Vec<usize> = (0..rank).filter(|a| a != axis).chain([*axis]).collect();
                let scores = out.permute(order)?.contiguous()?.reshape(((), classes))?;
                let scores: Vec<Vec<f32>> = scores.to_dtype(DType::F32)?.to_vec2()?;
                let targets: Vec<i64> = target.flatten_all()?.to_dtype(DType::I64)?.to_vec1()?;
                if targets.len() != scores.len() {
                    candle_core::bail!("{} targets for {} rows of class scores", targets.len(), scores.len());
                }
                *pixels = rank >= 4;
                let confusion = confusion.get_or_insert_with(|| Confusion::new(classes));
                for (row, t) in scores.iter().zip(targets) {
                    let named = Some(t) != *ignore;
                    let Some(t) = usize::try_from(t).ok().filter(|t| named && *t < classes) else {
                        *skipped += 1;
                        continue;
                    };
                    confusion.add(t, argmax(row));
                    *top_hits += u64::from(in_top_k(row, t, TOP_K));
                    if classes == 2 {
                        margins.push((row[1] - row[0], t == 1));
                    }
                }
            }
            Gathered::Binary { logits, confusion, scores } => {
                let values: Vec<f32> = out.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
                let targets: Vec<f32> = target.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
                let threshold = if *logits { 0.0 } else { 0.5 };
                for (v, t) in values.into_iter().zip(targets) {
                    let positive = t >= 0.5;
                    confusion.add(usize::from(positive), usize::from(v >= threshold));
                    scores.push((v, positive));
                }
            }
            Gathered::Regression(r) => {
                let rows = out.dim(0)?;
                let columns = out.elem_count() / rows.max(1);
                let r = r.get_or_insert_with(|| Regression::new(columns));
                let p: Vec<f32> = out.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
                let t: Vec<f32> = target.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
                if p.len() != t.len() {
                    candle_core::bail!("{} targets for {} predicted values", t.len(), p.len());
                }
                for (p, t) in p.chunks(columns.max(1)).zip(t.chunks(columns.max(1))) {
                    r.add(p, t);
                }
            }
            Gathered::LossOnly => {}
        }
        Ok(())
    }

    fn scores(self, output: &str, names: Option<&[String]>) -> OutputScores {
        let mut s = OutputScores {
            output: output.to_string(),
            task: Task::LossOnly,
            loss: None,
            accuracy: None,
            top_k: None,
            macro_scores: None,
            classes: Vec::new(),
            confusion: None,
            roc_auc: None,
            regression: None,
            skipped_targets: 0,
        };
        let classified = |s: &mut OutputScores, confusion: Confusion| {
            let named = names.filter(|n| n.len() == confusion.classes);
            s.accuracy = Some(confusion.accuracy());
            s.macro_scores = Some(confusion.macro_scores());
            s.classes = confusion
                .per_class()
                .into_iter()
                .enumerate()
                .map(|(i, scores)| ClassRow { name: named.map_or(i.to_string(), |n| n[i].clone()), scores })
                .collect();
            s.confusion = Some(confusion);
        };
        match self {
            Gathered::Classes { confusion, top_hits, margins, skipped, pixels, .. } => {
                s.task = if pixels { Task::Segmentation } else { Task::Classification };
                s.skipped_targets = skipped;
                if let Some(confusion) = confusion {
                    if confusion.classes > TOP_K && !pixels {
                        let accuracy = top_hits as f64 / confusion.total().max(1) as f64;
                        s.top_k = Some(TopK { k: TOP_K, accuracy });
                    }
                    classified(&mut s, confusion);
                }
                let (m, l): (Vec<f32>, Vec<bool>) = margins.into_iter().unzip();
                s.roc_auc = roc_auc(&m, &l);
            }
            Gathered::Binary { confusion, scores, .. } => {
                s.task = Task::Binary;
                classified(&mut s, confusion);
                let (v, l): (Vec<f32>, Vec<bool>) = scores.into_iter().unzip();
                s.roc_auc = roc_auc(&v, &l);
            }
            Gathered::Regression(r) => {
                s.task = Task::Regression;
                s.regression = r.map(|r| r.scores());
            }
            Gathered::LossOnly => {}
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cross_entropy(ignore_index: Option<i64>) -> LossConfig {
        LossConfig::CrossEntropy {
            label_smoothing: 0.0,
            class_axis: 1,
            weight: None,
            ignore_index,
            reduction: Default::default(),
        }
    }

    /// Three rows predicting classes 0, 1, 2; targets 0, 1, 1.
    fn scored(ignore_index: Option<i64>) -> OutputScores {
        let out = Tensor::new(&[[3f32, 0., 0.], [0., 3., 0.], [0., 0., 3.]], &Device::Cpu).unwrap();
        let target = Tensor::new(&[0i64, 1, 1], &Device::Cpu).unwrap();
        let mut gathered = Gathered::new(&cross_entropy(ignore_index));
        gathered.add(&out, &target).unwrap();
        gathered.scores("y", None)
    }

    #[test]
    fn targets_at_ignore_index_count_in_no_figure() {
        let all = scored(None);
        assert_eq!((all.accuracy, all.skipped_targets), (Some(2.0 / 3.0), 0));
        // Class 1's two rows are ignored: one right answer of one counted row is left.
        let ignoring = scored(Some(1));
        assert_eq!((ignoring.accuracy, ignoring.skipped_targets), (Some(1.0), 2));
        assert_eq!(ignoring.confusion.unwrap().total(), 1);
    }
}
