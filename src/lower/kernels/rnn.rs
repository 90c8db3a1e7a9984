//! Stacked, bidirectional LSTM, GRU and Elman RNN as explicit step loops on candle-core
//! primitives (matmul, narrow, cat, tanh, sigmoid), so that every weight of every layer and
//! direction gets its gradient; candle-nn's recurrent layers are single-layer and their GRU
//! returns a wrongly shaped sequence.
//!
//! A sequence is held as one `[N, F]` tensor per time step: a step then reads its input
//! without slicing a `[T, N, F]` tensor, whose backward would pad every step's gradient to the
//! whole sequence (quadratic in T).

use candle_core::{Result, Tensor, D};

use super::activation::{dropout, relu};
use super::linear::linear;
use crate::ops::rnn::Cell;

/// The weights of one layer in one direction, PyTorch layout: `w_ih` `[G * H, F]`,
/// `w_hh` `[G * H, H]`, biases `[G * H]`, gate blocks stacked in PyTorch's order.
pub struct Weights {
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    pub b_ih: Option<Tensor>,
    pub b_hh: Option<Tensor>,
}

/// A stack of recurrent layers: `layers[k][d]` is layer `k`, direction `d` (0 forward,
/// 1 reverse).
pub struct Stack {
    pub cell: Cell,
    pub hidden: usize,
    pub layers: Vec<Vec<Weights>>,
    /// Dropout on the outputs of every layer but the last, in training only.
    pub dropout: f64,
}

/// What a stack returns: the last layer's output per step (`[N, D * H]` each), and the final
/// states `[L * D, N, H]` (hidden, and the cell state for an LSTM).
pub struct Outputs {
    pub sequence: Vec<Tensor>,
    pub h_n: Tensor,
    pub c_n: Option<Tensor>,
}

/// Gate block `k` of `H` columns.
fn gate(x: &Tensor, k: usize, h: usize) -> Result<Tensor> {
    x.narrow(D::Minus1, k * h, h)
}

impl Stack {
    /// Runs the stack over `x` in PyTorch's layout (`[T, N, F]`, `[N, T, F]` when
    /// `batch_first`, or an unbatched `[T, F]`) from `initial` (empty: zeros; else `h0`, and
    /// `c0` for an LSTM, laid out as the final states): the sequence output in the same layout,
    /// then `h_n` (and `c_n`) as `[L * D, N, H]` (`[L * D, H]` unbatched).
    pub fn run(
        &self,
        x: &Tensor,
        initial: &[Tensor],
        batch_first: bool,
        unbatched: bool,
        train: bool,
    ) -> Result<Vec<Tensor>> {
        // An unbatched [T, F] runs as [T, 1, F] (and its states [L * D, H] as [L * D, 1, H]).
        let batched = |t: &Tensor| if unbatched { t.unsqueeze(1) } else { Ok(t.clone()) };
        let x = batched(x)?;
        let initial = initial.iter().map(batched).collect::<Result<Vec<_>>>()?;
        let time = usize::from(batch_first && !unbatched);
        let steps =
            (0..x.dim(time)?).map(|t| x.narrow(time, t, 1)?.squeeze(time)).collect::<Result<Vec<_>>>()?;
        let out = self.forward(&steps, &initial, train)?;
        let mut ys = vec![Tensor::stack(&out.sequence, time)?, out.h_n];
        ys.extend(out.c_n);
        if unbatched {
            ys = ys.iter().map(|y| y.squeeze(1)).collect::<Result<_>>()?;
        }
        Ok(ys)
    }

    /// Runs the stack over `steps` (each `[N, F]`) from `initial`: empty for zero states, else
    /// `h0` (and `c0`) `[L * D, N, H]`, row `k * D + d` for layer `k`, direction `d`.
    pub fn forward(&self, steps: &[Tensor], initial: &[Tensor], train: bool) -> Result<Outputs> {
        let (mut hs, mut cs) = (Vec::new(), Vec::new());
        let mut input = steps.to_vec();
        let directions = self.layers.first().map_or(1, Vec::len);
        for (k, layer) in self.layers.iter().enumerate() {
            let mut per_direction = Vec::new();
            for (d, w) in layer.iter().enumerate() {
                let row = k * directions + d;
                let start = initial.iter().map(|s| s.get(row)).collect::<Result<Vec<_>>>()?;
                let (outs, h, c) = self.direction(&input, w, d == 1, &start)?;
                per_direction.push(outs);
                hs.push(h);
                cs.extend(c);
            }
            let last = k + 1 == self.layers.len();
            input = (0..input.len())
                .map(|t| {
                    let parts: Vec<&Tensor> = per_direction.iter().map(|o| &o[t]).collect();
                    let y = if parts.len() == 1 { parts[0].clone() } else { Tensor::cat(&parts, 1)? };
                    if train && !last {
                        dropout(&y, self.dropout)
                    } else {
                        Ok(y)
                    }
                })
                .collect::<Result<_>>()?;
        }
        let c_n = if cs.is_empty() { None } else { Some(Tensor::stack(&cs, 0)?) };
        Ok(Outputs { sequence: input, h_n: Tensor::stack(&hs, 0)?, c_n })
    }

    /// One layer in one direction from `start` (empty: zeros; else `[N, H]` h, and c): the
    /// outputs in time order and the final (h, c).
    fn direction(
        &self,
        xs: &[Tensor],
        w: &Weights,
        reverse: bool,
        start: &[Tensor],
    ) -> Result<(Vec<Tensor>, Tensor, Option<Tensor>)> {
        let n = xs.first().map(|x| x.dim(0)).transpose()?.unwrap_or(0);
        let zeros = || Tensor::zeros((n, self.hidden), w.w_hh.dtype(), w.w_hh.device());
        let mut h = match start.first() {
            Some(h0) => h0.clone(),
            None => zeros()?,
        };
        let mut c = match start.get(1) {
            Some(c0) => c0.clone(),
            None => zeros()?,
        };
        let mut outs = Vec::with_capacity(xs.len());
        let order: Vec<usize> = if reverse { (0..xs.len()).rev().collect() } else { (0..xs.len()).collect() };
        for t in order {
            let gi = linear(&xs[t], &w.w_ih, w.b_ih.as_ref())?;
            // The hidden product runs at the first step too (on zeros), so that `w_hh` has a
            // gradient even for one-step sequences, as in PyTorch.
            let gh = linear(&h, &w.w_hh, w.b_hh.as_ref())?;
            (h, c) = self.step(&gi, &gh, &h, &c)?;
            outs.push(h.clone());
        }
        if reverse {
            // Back to time order.
            outs.reverse();
        }
        Ok((outs, h, (self.cell == Cell::Lstm).then_some(c)))
    }

    /// One step from the input and hidden projections: the new (h, c) (c is unused but by
    /// the LSTM).
    fn step(&self, gi: &Tensor, gh: &Tensor, h: &Tensor, c: &Tensor) -> Result<(Tensor, Tensor)> {
        let hid = self.hidden;
        let sigmoid = candle_nn::ops::sigmoid;
        match self.cell {
            Cell::Lstm => {
                let gates = (gi + gh)?;
                let i = sigmoid(&gate(&gates, 0, hid)?)?;
                let f = sigmoid(&gate(&gates, 1, hid)?)?;
                let g = gate(&gates, 2, hid)?.tanh()?;
                let o = sigmoid(&gate(&gates, 3, hid)?)?;
                let c = ((f * c)? + (i * g)?)?;
                Ok(((o * c.tanh()?)?, c))
            }
            Cell::Gru => {
                let r = sigmoid(&(gate(gi, 0, hid)? + gate(gh, 0, hid)?)?)?;
                let z = sigmoid(&(gate(gi, 1, hid)? + gate(gh, 1, hid)?)?)?;
                // The reset gate scales the hidden projection with its bias (PyTorch's form).
                let n = (gate(gi, 2, hid)? + (r * gate(gh, 2, hid)?)?)?.tanh()?;
                // (1 - z) * n + z * h
                let h = (&n + (z * (h - &n)?)?)?;
                Ok((h, c.clone()))
            }
            Cell::Rnn { relu: use_relu } => {
                let pre = (gi + gh)?;
                let h = if use_relu { relu(&pre)? } else { pre.tanh()? };
                Ok((h, c.clone()))
            }
        }
    }
}
