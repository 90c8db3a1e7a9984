//! Picking the next token from a language model's scores: greedy, or drawn from the softmax at
//! a temperature, kept to the `k` most likely tokens and to the smallest set whose probability
//! reaches `p` (nucleus sampling, Holtzman et al. 2020), in that order, as Hugging Face's
//! `generate` applies them.

use crate::lower::params::SplitMix64;

/// How the next token is picked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Choice {
    /// 0: greedy (the most likely token, ties to the lowest id).
    pub temperature: f64,
    /// Keep the `k` most likely tokens (`None`: all).
    pub top_k: Option<usize>,
    /// Keep the most likely tokens whose probabilities first reach `p` (`None` or 1: all).
    pub top_p: Option<f64>,
}

impl Choice {
    pub const GREEDY: Choice = Choice { temperature: 0.0, top_k: None, top_p: None };

    /// Checks the settings; the error names the flag.
    pub fn checked(self) -> Result<Choice, String> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(format!("--temperature must be a finite number >= 0, found {}", self.temperature));
        }
        if self.top_k == Some(0) {
            return Err("--top-k must be at least 1".into());
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(format!("--top-p must be in (0, 1], found {p}"));
            }
        }
        Ok(self)
    }

    /// The next token for `scores` (logits, one per id), drawing from `rng` unless greedy.
    pub(crate) fn pick(&self, scores: &[f32], rng: &mut SplitMix64) -> u32 {
        if self.temperature == 0.0 {
            return argmax(scores);
        }
        // Ids by falling score (ties: lower id first), so top-k and top-p cut a prefix.
        let mut order: Vec<u32> = (0..scores.len() as u32).collect();
        order.sort_by(|a, b| scores[*b as usize].total_cmp(&scores[*a as usize]).then(a.cmp(b)));
        order.truncate(self.top_k.unwrap_or(order.len()).max(1));
        let top = scores[order[0] as usize] as f64;
        let mut weights: Vec<f64> =
            order.iter().map(|id| ((scores[*id as usize] as f64 - top) / self.temperature).exp()).collect();
        if let Some(p) = self.top_p {
            let total: f64 = weights.iter().sum();
            let mut reached = 0.0;
            let keep = weights
                .iter()
                .position(|w| {
                    reached += w / total;
                    reached >= p
                })
                .map_or(weights.len(), |i| i + 1);
            weights.truncate(keep);
        }
        let total: f64 = weights.iter().sum();
        let mut target = rng.unit() * total;
        for (id, w) in order.iter().zip(&weights) {
            if target < *w {
                return *id;
            }
            target -= w;
        }
        order[weights.len() - 1]
    }
}

/// The id of the highest score, the lowest id among equals; NaN never wins.
pub fn argmax(scores: &[f32]) -> u32 {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] || scores[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(choice: Choice, scores: &[f32], draws: usize) -> Vec<usize> {
        let mut rng = SplitMix64::new(3);
        let mut n = vec![0; scores.len()];
        for _ in 0..draws {
            n[choice.pick(scores, &mut rng) as usize] += 1;
        }
        n
    }

    #[test]
    fn greedy_takes_the_first_best() {
        let mut rng = SplitMix64::new(0);
        assert_eq!(Choice::GREEDY.pick(&[0.5, 2.0, 2.0, -1.0], &mut rng), 1);
        assert_eq!(argmax(&[f32::NAN, 1.0]), 1);
    }

    /// Softmax at temperature 1 of ln(1), ln(2), ln(3), ln(4): probabilities 0.1 .. 0.4.
    #[test]
    fn draws_follow_the_softmax_and_the_cuts() {
        let scores: Vec<f32> = [1.0f32, 2.0, 3.0, 4.0].iter().map(|v| v.ln()).collect();
        let all = Choice { temperature: 1.0, top_k: None, top_p: None };
        let n = counts(all, &scores, 20_000);
        for (i, c) in n.iter().enumerate() {
            let expected = 2_000.0 * (i + 1) as f64;
            assert!((*c as f64 - expected).abs() < 300.0, "{n:?}");
        }
        // Top-2: ids 3 and 2 only, 4:3.
        let n = counts(Choice { top_k: Some(2), ..all }, &scores, 7_000);
        assert_eq!((n[0], n[1]), (0, 0));
        assert!((n[3] as f64 - 4_000.0).abs() < 250.0, "{n:?}");
        // Top-p 0.7: 0.4 + 0.3 reach it, so ids 3 and 2.
        let n = counts(Choice { top_p: Some(0.7), ..all }, &scores, 1_000);
        assert_eq!((n[0], n[1]), (0, 0), "{n:?}");
        // A low temperature is nearly greedy.
        let n = counts(Choice { temperature: 0.05, ..all }, &scores, 1_000);
        assert!(n[3] > 990, "{n:?}");
    }

    #[test]
    fn settings_are_checked() {
        let bad = [
            Choice { temperature: -1.0, ..Choice::GREEDY },
            Choice { top_k: Some(0), ..Choice::GREEDY },
            Choice { top_p: Some(0.0), ..Choice::GREEDY },
            Choice { top_p: Some(1.5), ..Choice::GREEDY },
        ];
        for c in bad {
            assert!(c.checked().is_err(), "{c:?}");
        }
        assert!(Choice { temperature: 0.8, top_k: Some(40), top_p: Some(0.95) }.checked().is_ok());
    }
}
