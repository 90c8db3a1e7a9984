//! The `loss:` section: one loss on the model's first output (`loss: cross_entropy`), or a loss
//! per output, each reading its own target, weighted and summed:
//!
//! ```yaml
//! loss:
//!   logits: cross_entropy                        # reads the target `logits`
//!   box: {name: smooth_l1, weight: 5.0, target: boxes, metrics: []}
//! ```
//!
//! The per-output form reports each output's own loss (`logits_loss`, and `val_logits_loss`
//! on validation) besides their weighted sum (`loss`), and each output's metrics prefixed by
//! its name (`logits_accuracy`). Outputs without a loss are computed and left alone.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::objective::{LossConfig, Metric};
use super::supervised::Objective;

/// What `loss:` says.
#[derive(Clone, PartialEq)]
pub enum Losses {
    /// One loss on the first output, against the data's (first) target.
    One(LossConfig),
    /// A loss per output, in the order written.
    PerOutput(Vec<OutputLoss>),
}

/// One output's loss in the per-output form.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputLoss {
    pub output: String,
    pub loss: LossConfig,
    /// Its share of the summed loss (1 by default).
    pub weight: f64,
    /// The target it reads; `None`: the one named like the output.
    pub target: Option<String>,
    /// Its metrics; `None`: `accuracy` when the loss classifies.
    pub metrics: Option<Vec<String>>,
}

impl Default for Losses {
    fn default() -> Self {
        Losses::One(LossConfig::default())
    }
}

/// The one-loss form prints as its loss alone, as it did before the per-output form existed,
/// so the settings a checkpoint recorded then still compare equal.
impl fmt::Debug for Losses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Losses::One(loss) => loss.fmt(f),
            Losses::PerOutput(losses) => f.debug_list().entries(losses).finish(),
        }
    }
}

impl Losses {
    /// The losses as objectives: `first_output` is the model's first output (the one loss's),
    /// `first_target` the data's first target; `metrics` the top-level `metrics:` key, which
    /// only the one-loss form takes.
    pub fn objectives(
        &self,
        metrics: Option<&[String]>,
        first_output: &str,
        first_target: &str,
    ) -> Result<Vec<Objective>, String> {
        let parse = |names: Option<&[String]>, loss: &LossConfig| match names {
            Some(names) => names.iter().map(|m| Metric::parse(m, loss)).collect(),
            None if loss.classifies() => Ok(vec![Metric::TopK(1)]),
            None => Ok(vec![]),
        };
        match self {
            Losses::One(loss) => Ok(vec![Objective {
                loss: loss.clone(),
                output: first_output.to_string(),
                target: first_target.to_string(),
                metrics: parse(metrics, loss)?,
                weight: 1.0,
                labelled: false,
            }]),
            Losses::PerOutput(_) if metrics.is_some() => {
                Err("with a loss per output, give each output its `metrics` in its `loss` entry \
                 (`loss: {logits: {name: cross_entropy, metrics: [accuracy]}}`)"
                    .into())
            }
            Losses::PerOutput(losses) => losses
                .iter()
                .map(|l| {
                    let metrics = parse(l.metrics.as_deref(), &l.loss)
                        .map_err(|e| format!("`loss.{}.metrics`: {e}", l.output))?;
                    Ok(Objective {
                        loss: l.loss.clone(),
                        output: l.output.clone(),
                        target: l.target.clone().unwrap_or_else(|| l.output.clone()),
                        metrics,
                        weight: l.weight,
                        labelled: true,
                    })
                })
                .collect(),
        }
    }

    /// Whether any loss takes class targets (so the data's class indices are checked).
    pub fn classifies(&self) -> bool {
        match self {
            Losses::One(loss) => loss.classifies(),
            Losses::PerOutput(losses) => losses.iter().any(|l| l.loss.classifies()),
        }
    }
}

impl<'de> Deserialize<'de> for Losses {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Losses, D::Error> {
        d.deserialize_any(LossesVisitor)
    }
}

struct LossesVisitor;

impl<'de> Visitor<'de> for LossesVisitor {
    type Value = Losses;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a loss's name, a mapping with `name`, or a mapping from output names to losses")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Losses, E> {
        named(name).map(Losses::One)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Losses, M::Error> {
        let mut entries: Vec<(String, Value)> = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            entries.push((key, value));
        }
        if entries.iter().any(|(k, _)| k == "name") {
            let mapping: Map<String, Value> = entries.into_iter().collect();
            return one(Value::Object(mapping)).map(Losses::One).map_err(de::Error::custom);
        }
        if entries.is_empty() {
            return Err(de::Error::custom("`loss` names no loss: give a name, or a loss per output"));
        }
        let per_output = entries.into_iter().map(|(output, value)| {
            output_loss(&output, value).map_err(|e| de::Error::custom(format!("`loss.{output}`: {e}")))
        });
        per_output.collect::<Result<_, _>>().map(Losses::PerOutput)
    }
}

/// A loss by its name alone, read with the configuration's own errors (an unknown name gets
/// the closest accepted one suggested).
fn named<E: de::Error>(name: &str) -> Result<LossConfig, E> {
    let map = [("name", name.to_string())].into_iter();
    LossConfig::deserialize(de::value::MapDeserializer::<_, E>::new(map))
}

/// A loss as a name or a mapping with `name` (and its settings).
fn one(value: Value) -> Result<LossConfig, String> {
    let value = match value {
        Value::String(name) => Value::Object(Map::from_iter([("name".to_string(), Value::String(name))])),
        other => other,
    };
    let loss = LossConfig::deserialize(value).map_err(|e| e.to_string())?;
    loss.check()?;
    Ok(loss)
}

/// One output's entry: a loss, with `weight`, `target` and `metrics` besides its own settings.
/// A list `weight` is cross-entropy's class weights, a number the output's share of the total.
fn output_loss(output: &str, value: Value) -> Result<OutputLoss, String> {
    let mut mapping = match value {
        Value::String(name) => {
            return Ok(OutputLoss {
                output: output.into(),
                loss: named::<de::value::Error>(&name).map_err(|e| e.to_string())?,
                weight: 1.0,
                target: None,
                metrics: None,
            })
        }
        Value::Object(m) => m,
        _ => return Err("expected a loss's name or a mapping with `name`".into()),
    };
    let share = match mapping.get("weight") {
        Some(Value::Array(_)) => None,
        _ => mapping.remove("weight"),
    };
    let weight = match share {
        None => 1.0,
        Some(w) => match w.as_f64() {
            Some(w) if w.is_finite() && w >= 0.0 => w,
            _ => return Err(format!("`weight` is a finite number, 0 or more; found {}", shown(&w))),
        },
    };
    let target = match mapping.remove("target") {
        None => None,
        Some(Value::String(t)) => Some(t),
        Some(other) => return Err(format!("`target` names a target; found {}", shown(&other))),
    };
    let metrics = match mapping.remove("metrics") {
        None => None,
        Some(m) => Some(Vec::<String>::deserialize(m).map_err(|e| format!("`metrics`: {e}"))?),
    };
    Ok(OutputLoss { output: output.into(), loss: one(Value::Object(mapping))?, weight, target, metrics })
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> Result<Losses, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn the_one_loss_forms_read_as_before() {
        assert_eq!(read("mse").unwrap(), Losses::One(LossConfig::Mse));
        let smoothed = read("{name: cross_entropy, label_smoothing: 0.1}").unwrap();
        assert_eq!(smoothed, Losses::One(LossConfig::cross_entropy(0.1)));
        // As a checkpoint records it: the text earlier versions wrote, the new keys at their
        // defaults left out.
        assert_eq!(
            crate::train::resume::loss_as_recorded(&smoothed),
            "CrossEntropy { label_smoothing: 0.1, class_axis: 1 }"
        );
    }

    #[test]
    fn a_loss_per_output_reads_weights_targets_and_metrics() {
        let l = read("{logits: cross_entropy, box: {name: smooth_l1, beta: 0.5, weight: 5, target: boxes}}")
            .unwrap();
        let Losses::PerOutput(l) = l else { panic!("per output: {l:?}") };
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].output.as_str(), l[0].weight, l[0].target.as_deref()), ("logits", 1.0, None));
        assert_eq!(l[1].loss, LossConfig::SmoothL1 { beta: 0.5 });
        assert_eq!((l[1].weight, l[1].target.as_deref()), (5.0, Some("boxes")));
        let objectives = Losses::PerOutput(l).objectives(None, "logits", "target").unwrap();
        assert_eq!(objectives[0].target, "logits");
        assert_eq!(objectives[0].figures(), ["logits_loss", "logits_accuracy"]);
        assert_eq!(objectives[1].figures(), ["box_loss"]);
    }

    #[test]
    fn bad_entries_are_named() {
        let e = read("{box: {name: mse, weight: -1}}").unwrap_err();
        assert!(e.contains("`loss.box`: `weight` is a finite number, 0 or more; found `-1`"), "{e}");
        let e = read("{box: {name: msee}}").unwrap_err();
        assert!(e.contains("`loss.box`: unknown variant `msee`"), "{e}");
        let per_output = read("{box: mse}").unwrap();
        let e = per_output.objectives(Some(&["accuracy".into()]), "box", "target").unwrap_err();
        assert!(e.starts_with("with a loss per output, give each output its `metrics`"), "{e}");
        let e = read("{box: {name: mse, metrics: [accuracy]}}")
            .unwrap()
            .objectives(None, "box", "t")
            .unwrap_err();
        assert!(e.starts_with("`loss.box.metrics`: `accuracy` needs class targets"), "{e}");
    }

    #[test]
    fn cross_entropy_reads_class_weights_ignore_index_and_reduction() {
        use crate::train::objective::Reduction;
        let one =
            read("{name: cross_entropy, weight: [1, 2.5], ignore_index: -100, reduction: sum}").unwrap();
        let Losses::One(LossConfig::CrossEntropy { weight, ignore_index, reduction, .. }) = &one else {
            panic!("{one:?}")
        };
        assert_eq!(
            (weight.as_deref(), *ignore_index, *reduction),
            (Some(&[1.0, 2.5][..]), Some(-100), Reduction::Sum)
        );
        // Recorded for a resume with the keys it has; unset ones print as earlier versions did.
        let recorded = crate::train::resume::loss_as_recorded(&one);
        assert_eq!(recorded, "CrossEntropy { label_smoothing: 0.0, class_axis: 1, weight: Some([1.0, 2.5]), ignore_index: Some(-100), reduction: Sum }");
        // Per output, a list `weight` is the classes', a number the output's share.
        let l = read("{logits: {name: cross_entropy, weight: [1, 3]}, box: {name: mse, weight: 5}}").unwrap();
        let Losses::PerOutput(l) = l else { panic!() };
        assert_eq!(l[0].weight, 1.0);
        assert!(matches!(&l[0].loss, LossConfig::CrossEntropy { weight: Some(w), .. } if w == &[1.0, 3.0]));
        assert_eq!(l[1].weight, 5.0);
        let e = read("{name: cross_entropy, weight: [1, -2]}").unwrap_err();
        assert!(e.contains("each 0 or more; found -2"), "{e}");
        let e = read("{name: cross_entropy, reduction: none}").unwrap_err();
        assert!(e.contains("none"), "{e}");
    }
}
