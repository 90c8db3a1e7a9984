//! `LSTM`, `GRU` and `RNN` as ONNX's own recurrent operators, one per layer, the weights taken
//! under their PyTorch keys and their gate blocks reordered in the graph: PyTorch stacks the
//! LSTM's gates as (i, f, g, o) and ONNX as (i, o, f, c); the GRU's (r, z, n) and (z, r, h).

use super::{int, ints, string, Mapped, NodeCtx};

pub(super) fn mapping(kind: &str) -> Option<fn(&mut NodeCtx) -> Mapped> {
    Some(match kind {
        "LSTM" => |c| recurrent(c, "LSTM", &[0, 3, 1, 2]),
        "GRU" => |c| recurrent(c, "GRU", &[1, 0, 2]),
        "RNN" => |c| recurrent(c, "RNN", &[0]),
        _ => return None,
    })
}

/// `w` (`[G * H, ...]`, PyTorch's gate order) with its `H`-row blocks in `order`.
fn reorder(c: &mut NodeCtx, w: &str, order: &[usize], h: i64) -> String {
    if order.len() == 1 {
        return w.to_string();
    }
    let sizes = c.const_i64(&vec![h; order.len()]);
    let blocks = c.op_n("Split", &[w, &sizes], vec![int("axis", 0)], order.len());
    let ordered: Vec<&str> = order.iter().map(|i| blocks[*i].as_str()).collect();
    c.op("Concat", &ordered, vec![int("axis", 0)])
}

/// One direction's tensors stacked on a new leading axis, as ONNX takes them.
fn stack(c: &mut NodeCtx, per_direction: &[String]) -> String {
    let axis = c.const_i64(&[0]);
    let lifted: Vec<String> = per_direction.iter().map(|t| c.op("Unsqueeze", &[t, &axis], vec![])).collect();
    match lifted.as_slice() {
        [one] => one.clone(),
        many => {
            let refs: Vec<&str> = many.iter().map(String::as_str).collect();
            c.op("Concat", &refs, vec![int("axis", 0)])
        }
    }
}

fn recurrent(c: &mut NodeCtx, op: &str, order: &[usize]) -> Mapped {
    let a = &c.node.attrs;
    let flag = |name| a.bool(name).map_err(|e| e.message);
    let (bias, batch_first, bidirectional) = (flag("bias")?, flag("batch_first")?, flag("bidirectional")?);
    let layers = a.int("num_layers").map_err(|e| e.message)?;
    let h = c.bound(&a.dim("hidden_size").map_err(|e| e.message)?, "hidden_size")?;
    let relu = a.str("nonlinearity") == Some("relu");
    if c.input_type(0)?.rank() != 3 {
        return Err("unbatched (rank-2) sequences are not exported yet".into());
    }
    let dirs = if bidirectional { 2 } else { 1 };
    let suffixes: &[&str] = if bidirectional { &["", "_reverse"] } else { &[""] };

    let mut x = c.input(0)?;
    if batch_first {
        x = c.op("Transpose", &[&x], vec![ints("perm", &[1, 0, 2])]);
    }
    let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
    for l in 0..layers {
        let (mut w, mut r, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for sfx in suffixes {
            let wi = c.weight(&format!("weight_ih_l{l}{sfx}"))?;
            let wh = c.weight(&format!("weight_hh_l{l}{sfx}"))?;
            w.push(reorder(c, &wi, order, h));
            r.push(reorder(c, &wh, order, h));
            if bias {
                let bi = c.weight(&format!("bias_ih_l{l}{sfx}"))?;
                let bh = c.weight(&format!("bias_hh_l{l}{sfx}"))?;
                let (bi, bh) = (reorder(c, &bi, order, h), reorder(c, &bh, order, h));
                b.push(c.op("Concat", &[&bi, &bh], vec![int("axis", 0)]));
            }
        }
        let (w, r) = (stack(c, &w), stack(c, &r));
        let b = if bias { stack(c, &b) } else { String::new() };
        // This layer's rows of the initial states `[layers * dirs, N, H]`.
        let rows = |c: &mut NodeCtx, port: usize| -> String {
            match c.inputs.get(port).cloned() {
                Some(state) => {
                    let (s, e, ax) =
                        (c.const_i64(&[l * dirs]), c.const_i64(&[(l + 1) * dirs]), c.const_i64(&[0]));
                    c.op("Slice", &[&state, &s, &e, &ax], vec![])
                }
                None => String::new(),
            }
        };
        let h0 = rows(c, 1);
        let mut inputs = vec![x.clone(), w, r, b, String::new(), h0];
        let mut attrs = vec![
            string("direction", if bidirectional { "bidirectional" } else { "forward" }),
            int("hidden_size", h),
        ];
        match op {
            "LSTM" => inputs.push(rows(c, 2)),
            "GRU" => attrs.push(int("linear_before_reset", 1)),
            _ => {
                let f = if relu { "Relu" } else { "Tanh" };
                attrs.push(super::strings("activations", &vec![f; dirs as usize]));
            }
        }
        while inputs.last().is_some_and(String::is_empty) {
            inputs.pop();
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let outs = c.op_n(op, &refs, attrs, if op == "LSTM" { 3 } else { 2 });
        // Y [T, dirs, N, H] -> [T, N, dirs * H], the next layer's input.
        let y = c.op("Transpose", &[&outs[0]], vec![ints("perm", &[0, 2, 1, 3])]);
        let shape = c.const_i64(&[0, 0, dirs * h]);
        x = c.op("Reshape", &[&y, &shape], vec![]);
        h_n.push(outs[1].clone());
        c_n.extend(outs.get(2).cloned());
    }
    if batch_first {
        x = c.op("Transpose", &[&x], vec![ints("perm", &[1, 0, 2])]);
    }
    let mut outputs = vec![x];
    for states in [h_n, c_n] {
        match states.as_slice() {
            [] => {}
            [one] => outputs.push(one.clone()),
            many => {
                let refs: Vec<&str> = many.iter().map(String::as_str).collect();
                outputs.push(c.op("Concat", &refs, vec![int("axis", 0)]));
            }
        }
    }
    Ok(outputs)
}
