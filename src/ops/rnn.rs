//! `LSTM`, `GRU` and `RNN`: stacked, optionally bidirectional recurrent layers, PyTorch layout.
//!
//! The input size is taken from the input (`input_size=` only adds a check). Outputs are the
//! sequence output, `h_n` `[layers * directions, N, H]` and, for the LSTM, `c_n` alike. The
//! initial state is zero unless given as trailing inputs `h0` (and `c0` for the LSTM), in
//! PyTorch's layout, the same as `h_n`'s: `lstm: LSTM(512, h0=h, c0=c)`, so a model that
//! carries its state from call to call is a spec. Unlike PyTorch's FLOP counter, the cost
//! counts the recurrent kernels.

#[cfg(feature = "lower")]
use candle_core::Tensor;

use super::signature::{attr, inferred, AttrSpec, AttrType, Default, Inputs};
use super::Init;
use super::{expect_dim, expect_float, expect_rank, Attrs, Cost, Op, OpDef, OpError, ParamDecl, Signature};
use crate::ir::dim::Dim;
use crate::ir::tensor::{shape_string, TensorType};
#[cfg(feature = "lower")]
use crate::lower::kernels::rnn::{Stack, Weights};
#[cfg(feature = "lower")]
use crate::lower::{Forward, ForwardCtx, Lower, LowerCtx, LowerError};

const HIDDEN_SIZE: AttrSpec = attr("hidden_size", AttrType::Int, Default::Required);
const NUM_LAYERS: AttrSpec = attr("num_layers", AttrType::Int, Default::Int(1));
const NONLINEARITY: AttrSpec =
    attr("nonlinearity", AttrType::Choice(&["tanh", "relu"]), Default::Str("tanh"));
const BIAS: AttrSpec = attr("bias", AttrType::Bool, Default::Bool(true));
const BATCH_FIRST: AttrSpec = attr("batch_first", AttrType::Bool, Default::Bool(false));
/// Applied to the outputs of every layer but the last, during training.
const DROPOUT: AttrSpec = attr("dropout", AttrType::Float, Default::Float(0.0));
const BIDIRECTIONAL: AttrSpec = attr("bidirectional", AttrType::Bool, Default::Bool(false));
/// Inferred from the input (its last axis, batch first or not), at PyTorch's position: wick's
/// `LSTM(512)` is PyTorch's `LSTM(in, 512)`.
const INPUT_SIZE: AttrSpec = inferred("input_size", 0, -1);

/// Far beyond any trained model; keeps a typo from declaring millions of weight tensors.
const MAX_LAYERS: i64 = 10_000;

const GATED: &[AttrSpec] = &[INPUT_SIZE, HIDDEN_SIZE, NUM_LAYERS, BIAS, BATCH_FIRST, DROPOUT, BIDIRECTIONAL];

/// The sequence, then the optional initial states.
const WITH_H0: Inputs = Inputs::Trailing { names: &["x", "h0"], required: 1 };

pub static LSTM: OpDef = OpDef {
    name: "LSTM",
    signature: Signature {
        inputs: Inputs::Trailing { names: &["x", "h0", "c0"], required: 1 },
        attrs: GATED,
    },
    build: |a: &Attrs| Ok(Box::new(Recurrent::from_attrs(a, Cell::Lstm)?)),
};

pub static GRU: OpDef = OpDef {
    name: "GRU",
    signature: Signature { inputs: WITH_H0, attrs: GATED },
    build: |a: &Attrs| Ok(Box::new(Recurrent::from_attrs(a, Cell::Gru)?)),
};

pub static RNN: OpDef = OpDef {
    name: "RNN",
    signature: Signature {
        inputs: WITH_H0,
        attrs: &[
            INPUT_SIZE,
            HIDDEN_SIZE,
            NUM_LAYERS,
            NONLINEARITY,
            BIAS,
            BATCH_FIRST,
            DROPOUT,
            BIDIRECTIONAL,
        ],
    },
    build: |a: &Attrs| {
        let relu = a.str("nonlinearity") == Some("relu");
        Ok(Box::new(Recurrent::from_attrs(a, Cell::Rnn { relu })?))
    },
};

/// The recurrence of one layer and direction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    /// Input, forget, cell and output gates (i, f, g, o), plus a cell state.
    Lstm,
    /// Reset, update and new gates (r, z, n).
    Gru,
    /// `h' = tanh(W_ih x + W_hh h + b)` (or relu).
    Rnn { relu: bool },
}

impl Cell {
    /// How many `H`-row blocks `weight_ih`/`weight_hh` stack.
    pub fn gates(self) -> i64 {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
            Cell::Rnn { .. } => 1,
        }
    }
}

#[derive(Debug)]
pub struct Recurrent {
    pub cell: Cell,
    pub hidden_size: Dim,
    pub num_layers: i64,
    pub bias: bool,
    pub batch_first: bool,
    pub dropout: f64,
    pub bidirectional: bool,
    pub input_size: Option<Dim>,
}

impl Recurrent {
    fn from_attrs(a: &Attrs, cell: Cell) -> Result<Recurrent, OpError> {
        let hidden_size = a.dim("hidden_size")?;
        if hidden_size.as_const().is_some_and(|h| h < 1) {
            return Err(OpError::new(format!("`hidden_size` must be at least 1, found {hidden_size}"))
                .attr("hidden_size"));
        }
        let dropout = a.float("dropout")?;
        if !(0.0..=1.0).contains(&dropout) {
            return Err(OpError::new(format!("`dropout` must be in [0, 1], found {dropout}")).attr("dropout"));
        }
        let input_size = if a.is_none("input_size") { None } else { Some(a.dim("input_size")?) };
        let num_layers = a.int_at_least("num_layers", 1)?;
        if num_layers > MAX_LAYERS {
            return Err(OpError::new(format!(
                "`num_layers` may be at most {MAX_LAYERS}, found {num_layers}"
            ))
            .attr("num_layers"));
        }
        Ok(Recurrent {
            cell,
            hidden_size,
            num_layers,
            bias: a.bool("bias")?,
            batch_first: a.bool("batch_first")?,
            dropout,
            bidirectional: a.bool("bidirectional")?,
            input_size,
        })
    }

    fn directions(&self) -> i64 {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// The features layer `k` reads: the input's, then the previous layer's (both directions).
    fn layer_input(&self, k: i64, input_features: &Dim) -> Dim {
        if k == 0 {
            input_features.clone()
        } else {
            self.hidden_size.mul(&Dim::konst(self.directions()))
        }
    }
}

impl Recurrent {
    /// Given initial states must be float and shaped as the final ones; an LSTM takes both or
    /// neither.
    fn expect_initial_states(&self, inputs: &[TensorType], state: &[Dim]) -> Result<(), OpError> {
        if self.cell == Cell::Lstm && inputs.len() == 2 {
            return Err(OpError::new("an LSTM's initial state is `h0` and `c0`: found `h0` only")
                .help("give both, `LSTM(..., h0=h, c0=c)`, or neither for a zero state"));
        }
        for (i, t) in inputs.iter().enumerate().skip(1) {
            let name = ["h0", "c0"][i - 1];
            expect_float(inputs, i, "a recurrent layer's initial state")?;
            if t.shape.as_slice() != state {
                return Err(OpError::new(format!(
                    "`{name}` must be [layers * directions, N, hidden] = {}, found {}",
                    shape_string(state),
                    shape_string(&t.shape)
                ))
                .input(i));
            }
        }
        Ok(())
    }
}

fn features(inputs: &[TensorType]) -> Dim {
    inputs.first().and_then(|x| x.shape.last()).cloned().unwrap_or_default()
}

impl Op for Recurrent {
    fn infer(&self, inputs: &[TensorType]) -> Result<Vec<TensorType>, OpError> {
        let layout = if self.batch_first {
            "[N, T, features] or unbatched [T, features]"
        } else {
            "[T, N, features] or unbatched [T, features]"
        };
        expect_rank(inputs, 0, &[2, 3], layout)?;
        let x = &inputs[0];
        expect_float(inputs, 0, "a recurrent layer").map_err(|e| e.help("one-hot encode token ids first"))?;
        let input_features = features(inputs);
        if let Some(expected) = &self.input_size {
            expect_dim(&input_features, expected, "input_size (the last axis)", 0)?;
        }
        let mut sequence = x.shape.clone();
        if let Some(last) = sequence.last_mut() {
            *last = self.hidden_size.mul(&Dim::konst(self.directions()));
        }
        let stacked = Dim::konst(self.num_layers * self.directions());
        let state = match x.shape.as_slice() {
            [_, _] => vec![stacked, self.hidden_size.clone()],
            [a, b, _] => {
                let batch = if self.batch_first { a } else { b };
                vec![stacked, batch.clone(), self.hidden_size.clone()]
            }
            _ => return Err(OpError::new(format!("expected {layout}, found {}", shape_string(&x.shape)))),
        };
        self.expect_initial_states(inputs, &state)?;
        let mut out = vec![x.with_shape(sequence), x.with_shape(state.clone())];
        if self.cell == Cell::Lstm {
            out.push(x.with_shape(state));
        }
        Ok(out)
    }

    /// Per layer and direction, in `state_dict` order: `weight_ih`, `weight_hh`, `bias_ih`,
    /// `bias_hh`, with `_reverse` for the backward direction.
    fn params(&self, inputs: &[TensorType]) -> Vec<ParamDecl> {
        let init = || Init::UniformFan(self.hidden_size.clone());
        let rows = self.hidden_size.mul(&Dim::konst(self.cell.gates()));
        let input_features = features(inputs);
        let mut p = Vec::new();
        for k in 0..self.num_layers {
            for suffix in ["", "_reverse"].iter().take(self.directions() as usize) {
                let cols = self.layer_input(k, &input_features);
                p.push(ParamDecl::weight(
                    format!("weight_ih_l{k}{suffix}"),
                    vec![rows.clone(), cols],
                    init(),
                ));
                let hh = vec![rows.clone(), self.hidden_size.clone()];
                p.push(ParamDecl::weight(format!("weight_hh_l{k}{suffix}"), hh, init()));
                if self.bias {
                    p.push(ParamDecl::weight(format!("bias_ih_l{k}{suffix}"), vec![rows.clone()], init()));
                    p.push(ParamDecl::weight(format!("bias_hh_l{k}{suffix}"), vec![rows.clone()], init()));
                }
            }
        }
        p
    }

    /// Every step of every layer and direction multiplies the input by `weight_ih` and the
    /// previous state by `weight_hh`: `gates * H * (in_k + H)` MACs; biases and gate
    /// nonlinearities excluded.
    fn cost(&self, inputs: &[TensorType], _: &[TensorType]) -> Cost {
        let Some(x) = inputs.first() else { return Cost::Uncounted };
        let input_features = features(inputs);
        let steps = Dim::product(&x.shape[..x.rank().saturating_sub(1)]);
        let rows = self.hidden_size.mul(&Dim::konst(self.cell.gates()));
        let per_step = (0..self.num_layers).fold(Dim::zero(), |acc, k| {
            acc.add(&rows.mul(&self.layer_input(k, &input_features).add(&self.hidden_size)))
        });
        Cost::Macs(steps.mul(&per_step).mul(&Dim::konst(self.directions())))
    }

    fn cost_note(&self) -> Option<&'static str> {
        Some(
            "recurrent kernels (LSTM/GRU/RNN input and hidden matmuls, every step) are counted\n\
             in MACs; PyTorch's FLOP counter does not count them",
        )
    }
}

#[cfg(feature = "lower")]
impl Lower for Recurrent {
    /// A step loop per layer and direction ([`Stack`]); every weight starts as PyTorch's
    /// `U(-1/sqrt(H), 1/sqrt(H))`.
    fn lower(&self, ctx: &mut LowerCtx) -> Result<Box<dyn Forward>, LowerError> {
        let hidden = ctx.dim(&self.hidden_size)?;
        let mut layers = Vec::new();
        for k in 0..self.num_layers {
            let mut directions = Vec::new();
            for suffix in ["", "_reverse"].iter().take(self.directions() as usize) {
                let mut w = |name: &str| ctx.weight(&format!("{name}_l{k}{suffix}"));
                let (w_ih, w_hh) = (w("weight_ih")?, w("weight_hh")?);
                let (b_ih, b_hh) =
                    if self.bias { (Some(w("bias_ih")?), Some(w("bias_hh")?)) } else { (None, None) };
                directions.push(Weights { w_ih, w_hh, b_ih, b_hh });
            }
            layers.push(directions);
        }
        let stack = Stack { cell: self.cell, hidden, layers, dropout: self.dropout };
        let (batch_first, unbatched) = (self.batch_first, ctx.inputs[0].rank() == 2);
        Ok(Box::new(move |xs: &[Tensor], ctx: &mut ForwardCtx| {
            let Some((x, given)) = xs.split_first() else { candle_core::bail!("expected an input sequence") };
            // A pass that carries layer states (step-by-step generation) starts where the last
            // one ended, unless the spec gives the initial state.
            let carried: Vec<Tensor> = match (&ctx.state, given.is_empty()) {
                (Some(state), true) => ["h", "c"].iter().filter_map(|k| state.get(*k).cloned()).collect(),
                _ => Vec::new(),
            };
            let initial = if given.is_empty() { carried.as_slice() } else { given };
            let ys = stack.run(x, initial, batch_first, unbatched, ctx.train)?;
            if let Some(state) = ctx.state.as_deref_mut() {
                for (key, y) in ["h", "c"].iter().zip(&ys[1..]) {
                    state.insert(key.to_string(), y.detach());
                }
            }
            Ok(ys)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::tensor::DType;
    use crate::ops::testing::{build, count, dims, err, f32, int, macs, out_shape};
    use crate::ops::{AttrValue, ParamKind};

    fn yes(name: &'static str) -> (&'static str, AttrValue) {
        (name, AttrValue::Bool(true))
    }

    #[test]
    fn char_rnn_lstm_shapes_params_and_macs() {
        let a = [("hidden_size", int(512)), ("num_layers", int(2)), yes("batch_first")];
        let op = build(&LSTM, &a).unwrap();
        let x = [f32(&[128, 100, 83])];
        let out = op.infer(&x).unwrap();
        assert_eq!(
            out.iter().map(dims).collect::<Vec<_>>(),
            [vec![128, 100, 512], vec![2, 128, 512], vec![2, 128, 512]]
        );
        // Layer 0: 2048 x 83 + 2048 x 512 + 2 x 2048; layer 1: 2 x 2048 x 512 + 2 x 2048.
        assert_eq!(count(&*op, &x, ParamKind::Weight), 1_222_656 + 2_101_248);
        // 12,800 steps x (4 x 512 x (83 + 512) + 4 x 512 x (512 + 512)).
        assert_eq!(macs(&*op, &x), 12_800 * (1_218_560 + 2_097_152));
        assert!(op.cost_note().is_some_and(|n| n.contains("PyTorch")));
    }

    #[test]
    fn bidirectional_gru_names_and_shapes_like_pytorch() {
        let a = [("hidden_size", int(16)), ("num_layers", int(2)), yes("bidirectional")];
        let op = build(&GRU, &a).unwrap();
        let x = [f32(&[7, 3, 10])];
        let out = op.infer(&x).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(dims(&out[0]), vec![7, 3, 32]);
        assert_eq!(dims(&out[1]), vec![4, 3, 16]);
        let params: Vec<(String, Vec<i64>)> = op
            .params(&x)
            .iter()
            .map(|p| (p.name.to_string(), p.shape.iter().map(|d| d.as_const().unwrap()).collect()))
            .collect();
        let expected = [
            ("weight_ih_l0", vec![48, 10]),
            ("weight_hh_l0", vec![48, 16]),
            ("bias_ih_l0", vec![48]),
            ("bias_hh_l0", vec![48]),
            ("weight_ih_l0_reverse", vec![48, 10]),
            ("weight_hh_l0_reverse", vec![48, 16]),
            ("bias_ih_l0_reverse", vec![48]),
            ("bias_hh_l0_reverse", vec![48]),
            ("weight_ih_l1", vec![48, 32]),
        ];
        for (i, (name, shape)) in expected.iter().enumerate() {
            assert_eq!(params[i], (name.to_string(), shape.clone()));
        }
        assert_eq!(params.len(), 16);
        assert_eq!(params[15].0, "bias_hh_l1_reverse");
        // 21 steps x 2 directions x 48 x ((10 + 16) + (32 + 16)).
        assert_eq!(macs(&*op, &x), 21 * 2 * 48 * (26 + 48));
    }

    #[test]
    fn plain_rnn_without_bias_unbatched_and_symbolic() {
        let a = [
            ("hidden_size", int(20)),
            ("nonlinearity", AttrValue::Str("relu".into())),
            ("bias", AttrValue::Bool(false)),
        ];
        let op = build(&RNN, &a).unwrap();
        let x = [f32(&[5, 8])];
        assert_eq!(out_shape(&*op, &x), vec![5, 20]);
        assert_eq!(dims(&op.infer(&x).unwrap()[1]), vec![1, 20]);
        assert_eq!(count(&*op, &x, ParamKind::Weight), 20 * 8 + 20 * 20);
        assert_eq!(macs(&*op, &x), 5 * 20 * 28);
        let (t, n) = (Dim::sym("T"), Dim::sym("N"));
        let seq = TensorType::new(DType::F32, vec![t.clone(), n.clone(), 8.into()]);
        let out = op.infer(std::slice::from_ref(&seq)).unwrap();
        assert_eq!(out[1].shape, vec![Dim::konst(1), n.clone(), Dim::konst(20)]);
        assert_eq!(op.cost(&[seq], &out), Cost::Macs(t.mul(&n).mul(&Dim::konst(560))));
    }

    #[test]
    fn rejects_bad_inputs_and_attributes() {
        let op = build(&LSTM, &[("hidden_size", int(8)), ("input_size", int(10))]).unwrap();
        let e = err(op.infer(&[f32(&[4, 2, 12])]));
        assert!(e.message.contains("input_size (the last axis): expected 10, found 12"), "{}", e.message);
        assert!(err(op.infer(&[f32(&[1, 3, 8, 8])])).message.contains("rank-2 or rank-3"));
        let ids = TensorType::new(DType::I64, vec![4.into(), 2.into()]);
        assert!(err(op.infer(&[ids])).message.contains("found dtype i64"));
        let e = err(build(&GRU, &[("hidden_size", int(8)), ("num_layers", int(0))]));
        assert_eq!(
            (e.attr, e.message.as_str()),
            (Some("num_layers"), "`num_layers` must be at least 1, found 0")
        );
        let e = err(build(&LSTM, &[("hidden_size", int(8)), ("num_layers", int(1 << 40))]));
        assert!(e.message.contains("at most 10000"), "{}", e.message);
        let e = err(build(&GRU, &[("hidden_size", int(0))]));
        assert_eq!(e.attr, Some("hidden_size"));
        let e = err(build(&RNN, &[("hidden_size", int(8)), ("dropout", AttrValue::Float(1.5))]));
        assert!(e.message.contains("[0, 1], found 1.5"), "{}", e.message);
    }

    /// Several outputs come back as a list that a binding unpacks; piping the list on is an
    /// error whose help says to unpack it.
    #[test]
    fn a_spec_unpacks_the_outputs() {
        let spec = "dim N = 128\nmodel M {\n input x: [N, 100, 83]\n \
                    out, h, c = x |> lstm: LSTM(512, num_layers=2, batch_first=true)\n \
                    output out, h: [2, N, 512], c\n}\n";
        let c = crate::compile_source("lstm.wick", spec, &crate::Options::default());
        assert!(!c.diagnostics.has_errors(), "{}", c.render_diagnostics(crate::diag::RenderStyle::PLAIN));
        let s = c.summary(None).unwrap();
        let shapes: Vec<String> =
            s.outputs.iter().map(|p| crate::report::shape_text(&Some(p.shape.clone()))).collect();
        assert_eq!(shapes, ["[128, 100, 512]", "[2, 128, 512]", "[2, 128, 512]"]);
        assert_eq!(s.cost_notes.len(), 1);

        let piped = "model M {\n input x: [4, 2, 8]\n y = x |> LSTM(16) |> Linear(3)\n output y\n}\n";
        let c = crate::compile_source("piped.wick", piped, &crate::Options::default());
        let d = c.diagnostics.items.iter().find(|d| d.code == "E0207").expect("a type error");
        assert!(d.message.contains("found a list of 3 items"), "{}", d.message);
        assert!(d.help.as_deref().is_some_and(|h| h.contains("unpack it first")));
    }

    #[cfg(feature = "lower")]
    fn check(spec: &str) {
        crate::lower::gradcheck::check_spec(spec, false).unwrap().assert_within(1e-6);
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_stacked_bidirectional_lstm_batch_first() {
        check(
            "model M { input x: [2, 3, 5]\n \
             y, h, c = x |> lstm: LSTM(3, num_layers=2, bidirectional=true, batch_first=true)\n \
             output y, h, c }",
        );
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_gru_sequence_first_and_bidirectional() {
        check("model M { input x: [4, 2, 3]\n y, h = x |> gru: GRU(5, num_layers=2)\n output y, h }");
        check("model M { input x: [3, 2, 4]\n y, h = x |> gru: GRU(5, bidirectional=true)\n output y, h }");
    }

    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_rnn_tanh_and_relu_unbatched_without_bias() {
        check(
            "model M { input x: [2, 4, 3]\n \
             y, h = x |> rnn: RNN(5, num_layers=2, batch_first=true, bidirectional=true)\n output y, h }",
        );
        check(
            "model M { input x: [5, 3]\n \
             y, h = x |> rnn: RNN(4, nonlinearity=\"relu\", bias=false)\n output y, h }",
        );
    }

    /// Through h0 and c0 as well as x and the weights, on odd shapes: an LSTM stacked and
    /// bidirectional, a GRU sequence first, an unbatched relu RNN.
    #[cfg(feature = "lower")]
    #[test]
    fn gradcheck_through_initial_states() {
        check(
            "model M { input x: [2, 3, 5]\n input h0: [4, 2, 3]\n input c0: [4, 2, 3]\n \
             y, h, c = x |> lstm: LSTM(3, num_layers=2, bidirectional=true, batch_first=true, h0=h0, c0=c0)\n \
             output y, h, c }",
        );
        check(
            "model M { input x: [3, 2, 4]\n input h0: [2, 2, 5]\n \
             y, h = x |> gru: GRU(5, num_layers=2, h0=h0)\n output y, h }",
        );
        check(
            "model M { input x: [5, 3]\n input h0: [1, 4]\n \
             y, h = x |> rnn: RNN(4, nonlinearity=\"relu\", h0=h0)\n output y, h }",
        );
    }

    #[test]
    fn initial_states_must_match_the_final_ones() {
        let op = build(&LSTM, &[("hidden_size", int(6)), ("num_layers", int(2))]).unwrap();
        let x = f32(&[4, 3, 5]);
        let e = err(op.infer(&[x.clone(), f32(&[2, 3, 6])]));
        assert!(e.message.contains("found `h0` only"), "{}", e.message);
        let e = err(op.infer(&[x.clone(), f32(&[2, 3, 6]), f32(&[1, 3, 6])]));
        assert!(
            e.message.contains("`c0` must be [layers * directions, N, hidden] = [2, 3, 6], found [1, 3, 6]"),
            "{}",
            e.message
        );
        assert_eq!(op.infer(&[x.clone(), f32(&[2, 3, 6]), f32(&[2, 3, 6])]).unwrap().len(), 3);
        let gru = build(&GRU, &[("hidden_size", int(6))]).unwrap();
        let e = err(gru.infer(&[x, f32(&[1, 4, 6])]));
        assert!(e.message.contains("`h0` must be"), "{}", e.message);
    }

    /// A pass that carries layer states continues from the last one's final state: two halves
    /// of a sequence, one after the other, end where the whole sequence does.
    #[cfg(feature = "lower")]
    #[test]
    fn a_carried_state_continues_the_sequence() {
        use candle_core::{DType, Device};
        let spec = |t: usize| {
            format!(
                "model M {{ input x: [{t}, 2, 3]\n y, h, c = x |> lstm: LSTM(4, num_layers=2)\n output y, h, c }}"
            )
        };
        let whole = crate::Model::from_source("w.wick", &spec(5), &crate::Options::default()).unwrap();
        let whole = whole.build(&Device::Cpu, DType::F64).unwrap();
        let x = crate::lower::random::scoped(1, "x", 0, || {
            crate::lower::random::normal(&[5, 2, 3], DType::F64, &Device::Cpu)
        })
        .unwrap();
        let expected = whole.infer(std::slice::from_ref(&x), false).unwrap();
        let mut pass =
            crate::lower::Pass { states: Some(whole.new_states()), ..crate::lower::Pass::default() };
        let mut got = Vec::new();
        for (start, len) in [(0, 3), (3, 2)] {
            let part = crate::Model::from_source("p.wick", &spec(len), &crate::Options::default()).unwrap();
            let part = part.build_sharing(&whole, &[]).unwrap();
            got = part.forward_with(&[x.narrow(0, start, len).unwrap()], &mut pass).unwrap();
        }
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for (g, e) in got[1..].iter().zip(&expected[1..]) {
            let worst = flat(g).iter().zip(flat(e)).fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst < 1e-12, "{worst}");
        }
    }

    #[cfg(feature = "lower")]
    #[test]
    fn one_step_sequences_still_give_the_hidden_weights_a_gradient() {
        check("model M { input x: [1, 3, 2]\n y, h, c = x |> lstm: LSTM(3)\n output y, h, c }");
    }

    #[cfg(feature = "lower")]
    /// Dropout acts between layers in training only: at p = 1 the top layer sees zeros, so its
    /// outputs no longer depend on the input; in evaluation they do.
    #[test]
    fn inter_layer_dropout_applies_in_training_only() {
        use candle_core::{DType, Device};
        let spec = "model M { input x: [2, 3, 4]\n \
                    y, h = x |> gru: GRU(5, num_layers=2, dropout=1.0)\n output y }";
        let model = crate::Model::from_source("d.wick", spec, &crate::Options::default()).unwrap();
        let net = model.build(&Device::Cpu, DType::F64).unwrap();
        let run = |scale: f64, train: bool| {
            let x = (Tensor::ones((2, 3, 4), DType::F64, &Device::Cpu).unwrap() * scale).unwrap();
            net.forward(&[x], train).unwrap().remove(0).flatten_all().unwrap().to_vec1::<f64>().unwrap()
        };
        assert_eq!(run(1.0, true), run(-3.0, true));
        assert_ne!(run(1.0, false), run(-3.0, false));
    }
}
