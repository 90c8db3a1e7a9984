//! A seeded data set with a rule a model can learn, for smoke tests: features drawn from a
//! standard normal (or token ids uniform in `0..vocab`), and each label the arg-max of a
//! fixed random linear map of them — a linear layer can fit it, so the loss must go down.

use candle_core::{Device, Tensor};

use super::config::{Synthetic, Target};
use super::convert::{Named, Raw};
use super::DataError;
use crate::lower::params::SplitMix64;

pub(super) fn generate(s: &Synthetic, target: Target) -> Result<Raw, DataError> {
    let device = &Device::Cpu;
    let mut rng = SplitMix64::new(s.seed);
    let width: usize = s.features.iter().product();
    let shape = [&[s.rows], s.features.as_slice()].concat();
    let (x, scores) = match s.vocab {
        None => {
            let xs: Vec<f32> = (0..s.rows * width).map(|_| rng.normal() as f32).collect();
            let map: Vec<f32> = (0..width * s.classes).map(|_| rng.normal() as f32).collect();
            let x = Tensor::from_vec(xs, (s.rows, width), device)?;
            let scores = x.matmul(&Tensor::from_vec(map, (width, s.classes), device)?)?;
            (x.reshape(shape)?, scores)
        }
        Some(vocab) => {
            let tokens: Vec<i64> =
                (0..s.rows * width).map(|_| (rng.next_u64() % vocab as u64) as i64).collect();
            // A score per token and class; an example's scores are its tokens' sums.
            let per_token: Vec<f32> = (0..vocab * s.classes).map(|_| rng.normal() as f32).collect();
            let mut scores = vec![0f32; s.rows * s.classes];
            for (row, ids) in tokens.chunks(width.max(1)).enumerate() {
                for id in ids {
                    let from = *id as usize * s.classes;
                    for (acc, w) in scores[row * s.classes..][..s.classes].iter_mut().zip(&per_token[from..])
                    {
                        *acc += w;
                    }
                }
            }
            (Tensor::from_vec(tokens, shape, device)?, Tensor::from_vec(scores, (s.rows, s.classes), device)?)
        }
    };
    let y = match target {
        Target::Classes => Some(scores.argmax(1)?),
        Target::Values => Some(scores),
        Target::Input => None,
    };
    Ok(Raw {
        x: Named::new("the synthetic features", x),
        y: y.map(|t| Named::new("the synthetic targets", t)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(features: Vec<usize>, vocab: Option<usize>, seed: u64) -> Synthetic {
        Synthetic { rows: 200, features, classes: 3, vocab, seed }
    }

    fn labels(raw: &Raw) -> Vec<u32> {
        raw.y.as_ref().expect("labels").tensor.to_vec1().unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_data_and_every_class_appears() {
        let a = generate(&spec(vec![1, 4, 4], None, 5), Target::Classes).unwrap();
        let b = generate(&spec(vec![1, 4, 4], None, 5), Target::Classes).unwrap();
        let c = generate(&spec(vec![1, 4, 4], None, 6), Target::Classes).unwrap();
        assert_eq!(a.x.tensor.dims(), &[200, 1, 4, 4]);
        let flat = |r: &Raw| r.x.tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&a), flat(&b));
        assert_ne!(flat(&a), flat(&c));
        assert_eq!(labels(&a), labels(&b));
        let counts: Vec<usize> = (0..3).map(|k| labels(&a).iter().filter(|l| **l == k).count()).collect();
        assert!(counts.iter().all(|n| *n > 20), "{counts:?}");
    }

    #[test]
    fn tokens_stay_in_the_vocabulary_and_label_by_their_scores() {
        let raw = generate(&spec(vec![8], Some(50), 1), Target::Classes).unwrap();
        let tokens = raw.x.tensor.flatten_all().unwrap().to_vec1::<i64>().unwrap();
        assert!(tokens.iter().all(|t| (0..50).contains(t)));
        let mut seen = labels(&raw);
        seen.dedup();
        assert!(seen.len() > 1, "one class only");
        let values = generate(&spec(vec![8], Some(50), 1), Target::Values).unwrap();
        assert_eq!(values.y.unwrap().tensor.dims(), &[200, 3]);
        assert!(generate(&spec(vec![8], Some(50), 1), Target::Input).unwrap().y.is_none());
    }
}
