//! Beam search: the `width` most likely continuations of a sequence, kept step by step.
//!
//! A hypothesis's score is the sum of its tokens' log-probabilities (log-softmax of the
//! model's scores). Each step extends every live hypothesis by each of its `width` most likely
//! tokens and keeps the `width` best extensions that do not end the sequence; those that end
//! it (the `end` token) and rank above the last kept one are set aside as finished. The search
//! stops after `max_new` tokens, when none is live, or when the best finished hypothesis scores
//! at least the best live one: a log-probability is at most 0, so no extension can overtake it.
//! Width 1 is greedy decoding.

/// A decoded sequence: the tokens after the start, the end token included if it was reached.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub tokens: Vec<u32>,
    /// The sum of the tokens' log-probabilities.
    pub score: f64,
    pub finished: bool,
}

struct Live<C> {
    tokens: Vec<u32>,
    score: f64,
    cursor: C,
}

/// The `width` best sequences after `start`, best first. `scores(cursor, tokens)` gives the
/// model's scores of the token after `tokens` (the start included), its cursor carrying what
/// it keeps of that hypothesis; a branching hypothesis clones its parent's cursor.
pub fn search<C: Clone, E>(
    start: &[u32],
    cursor: C,
    width: usize,
    max_new: usize,
    end: Option<u32>,
    mut scores: impl FnMut(&mut C, &[u32]) -> Result<Vec<f32>, E>,
) -> Result<Vec<Scored>, E> {
    let width = width.max(1);
    let mut live = vec![Live { tokens: start.to_vec(), score: 0.0, cursor }];
    let mut finished: Vec<Scored> = Vec::new();
    for _ in 0..max_new {
        let mut candidates = Vec::new();
        for (parent, hypothesis) in live.iter_mut().enumerate() {
            let logp = log_softmax(&scores(&mut hypothesis.cursor, &hypothesis.tokens)?);
            for (token, lp) in best(&logp, width) {
                candidates.push((hypothesis.score + lp, parent, token));
            }
        }
        // Best first; ties to the older hypothesis, then the smaller token, so runs repeat.
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut next = Vec::with_capacity(width);
        for (score, parent, token) in candidates {
            if next.len() == width {
                break;
            }
            let Some(from) = live.get(parent) else { continue };
            let mut tokens = from.tokens.clone();
            tokens.push(token);
            if Some(token) == end {
                finished.push(Scored { tokens: tokens.split_off(start.len()), score, finished: true });
            } else {
                next.push(Live { tokens, score, cursor: from.cursor.clone() });
            }
        }
        live = next;
        let best_finished = finished.iter().map(|s| s.score).fold(f64::NEG_INFINITY, f64::max);
        if live.first().is_none_or(|l| best_finished >= l.score) {
            break;
        }
    }
    let unfinished = live.into_iter().map(|l| Scored {
        tokens: l.tokens[start.len().min(l.tokens.len())..].to_vec(),
        score: l.score,
        finished: false,
    });
    let mut all: Vec<Scored> = finished.into_iter().chain(unfinished).collect();
    all.sort_by(|a, b| b.score.total_cmp(&a.score));
    all.truncate(width);
    Ok(all)
}

/// Log-probabilities of scores, in f64 (shifted by the maximum, so large scores do not overflow).
fn log_softmax(scores: &[f32]) -> Vec<f64> {
    let max = scores.iter().map(|s| f64::from(*s)).fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = scores.iter().map(|s| (f64::from(*s) - max).exp()).sum();
    let log_sum = max + sum.ln();
    scores.iter().map(|s| f64::from(*s) - log_sum).collect()
}

/// The `k` largest entries as (index, value), largest first, ties to the smaller index.
fn best(values: &[f64], k: usize) -> Vec<(u32, f64)> {
    let mut order: Vec<(u32, f64)> = values.iter().enumerate().map(|(i, v)| (i as u32, *v)).collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order.truncate(k);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores from a table keyed by the last token: log-probabilities given directly (their
    /// softmax is themselves when they are already normalised).
    fn table(rows: &[(u32, [f64; 3])]) -> impl FnMut(&mut usize, &[u32]) -> Result<Vec<f32>, ()> + '_ {
        move |calls: &mut usize, tokens: &[u32]| {
            *calls += 1;
            let last = tokens.last().copied().ok_or(())?;
            let row = rows.iter().find(|(t, _)| *t == last).ok_or(())?;
            Ok(row.1.iter().map(|p| p.ln() as f32).collect())
        }
    }

    /// After start 9: token 0 (0.5) leads to a weak sequence, token 1 (0.4) to a strong one.
    const GARDEN: [(u32, [f64; 3]); 3] =
        [(9, [0.5, 0.4, 0.1]), (0, [0.34, 0.33, 0.33]), (1, [0.05, 0.05, 0.9])];

    #[test]
    fn greedy_takes_the_locally_best_token_and_a_beam_finds_the_better_sequence() {
        let greedy = search(&[9], 0usize, 1, 2, None, table(&GARDEN)).unwrap();
        assert_eq!(greedy[0].tokens, [0, 0]);
        assert!((greedy[0].score - (0.5f64 * 0.34).ln()).abs() < 1e-6);
        let beam = search(&[9], 0usize, 2, 2, None, table(&GARDEN)).unwrap();
        assert_eq!(beam[0].tokens, [1, 2], "0.4 * 0.9 = 0.36 beats 0.5 * 0.34 = 0.17");
        assert!((beam[0].score - (0.4f64 * 0.9).ln()).abs() < 1e-6);
        assert_eq!(beam.len(), 2);
        assert!(beam[0].score >= beam[1].score);
    }

    #[test]
    fn a_finished_hypothesis_stops_the_search_once_nothing_live_can_beat_it() {
        // Token 2 ends the sequence: after 9 -> 1 -> 2 (0.36) nothing live scores more.
        let mut calls = 0;
        let mut scorer = table(&GARDEN);
        let found = search(&[9], 0usize, 2, 50, Some(2), |c: &mut usize, t: &[u32]| {
            calls += 1;
            scorer(c, t)
        })
        .unwrap();
        assert_eq!((found[0].tokens.as_slice(), found[0].finished), ([1, 2].as_slice(), true));
        assert!((found[0].score - (0.4f64 * 0.9).ln()).abs() < 1e-6);
        assert!(calls <= 4, "the search went on after the best sequence ended: {calls} calls");
    }

    #[test]
    fn the_cursor_follows_its_hypothesis() {
        // Each cursor counts the calls made on its hypothesis's line: the number of tokens
        // scored, one per step, whatever the other hypotheses did.
        let found = search(&[9], 0usize, 3, 4, None, |calls: &mut usize, tokens: &[u32]| {
            *calls += 1;
            assert_eq!(*calls, tokens.len(), "the cursor of {tokens:?}");
            Ok::<_, ()>(vec![0.0, 0.1, 0.2])
        })
        .unwrap();
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|s| s.tokens.len() == 4));
    }

    #[test]
    fn scores_that_fail_stop_the_search() {
        let failed = search(&[9], 0usize, 2, 3, None, |_: &mut usize, _: &[u32]| Err::<Vec<f32>, _>("no"));
        assert_eq!(failed, Err("no"));
    }
}
