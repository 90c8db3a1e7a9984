//! Gradients that can be differentiated again (PyTorch's `create_graph=True`), for losses that
//! contain a gradient: WGAN-GP's penalty is the norm of dD/dx, itself back-propagated to D's
//! weights.
//!
//! Why a thread. candle 0.11's `Tensor::backward` detaches every gradient it propagates unless
//! `CANDLE_GRAD_DO_NOT_DETACH` is set, and it reads that variable once per thread, into a
//! thread-local, at the thread's first backward; nothing else switches it (and `Tensor::op` is
//! crate-private, so no graph walk of our own can replace candle's). Setting the variable for
//! the process would keep the graph of every ordinary backward on every thread (its memory and
//! time) for the sake of the few that need it. So one worker thread, started on first use, has
//! its thread-local initialised with the variable set (for about the time that thread takes to
//! run one tiny backward; the variable is then restored), and every call here hands it a loss
//! and gets the gradients back. Ordinary backward passes on every other thread are unchanged.
//!
//! What it costs: a channel round trip per call (microseconds) and the calls are serialised
//! on the one worker. The gradients hold the graph of the backward pass that made them, so
//! every intermediate of both passes lives as long as they do: drop them after the second
//! backward. A thread that runs its first backward of the process during the worker's start
//! (a few microseconds, once) would read the variable set too: its gradients are the same,
//! only kept with their graph.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Result, Tensor, Var};

/// The environment variable candle 0.11 reads (in `backprop.rs`).
const DO_NOT_DETACH: &str = "CANDLE_GRAD_DO_NOT_DETACH";

type Request = (Tensor, Sender<Result<GradStore>>);

/// The gradients of `loss` with respect to every variable it depends on, each keeping the graph
/// that computed it, so that a function of them can be back-propagated again with an ordinary
/// `backward`. The ops on the way must have a differentiable backward: run the forward pass as
/// a [`crate::lower::Pass`] with `differentiable` set, which stands down the CPU kernels whose
/// backward is hand-written.
pub fn differentiable_grads(loss: &Tensor) -> Result<GradStore> {
    let worker = worker().as_ref().map_err(|e| candle_core::Error::msg(e.clone()))?;
    let (reply, answer) = channel();
    let sent = worker.lock().unwrap_or_else(|e| e.into_inner()).send((loss.clone(), reply));
    sent.map_err(|_| candle_core::Error::msg("the differentiable-gradient worker has stopped"))?;
    answer.recv().map_err(|_| candle_core::Error::msg("the differentiable-gradient worker has stopped"))?
}

/// The worker's request queue, started once; or why it could not be.
fn worker() -> &'static std::result::Result<Mutex<Sender<Request>>, String> {
    static WORKER: OnceLock<std::result::Result<Mutex<Sender<Request>>, String>> = OnceLock::new();
    WORKER.get_or_init(|| start().map(Mutex::new))
}

fn start() -> std::result::Result<Sender<Request>, String> {
    let (requests, queue) = channel::<Request>();
    let (ready, started) = channel::<Result<()>>();
    let previous = std::env::var_os(DO_NOT_DETACH);
    std::env::set_var(DO_NOT_DETACH, "1");
    let spawned = std::thread::Builder::new().name("wick-grad2".into()).spawn(move || {
        // The first backward on this thread fixes its thread-local; the probe also proves it took.
        let _ = ready.send(probe());
        for (loss, reply) in queue {
            let grads = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loss.backward()))
                .unwrap_or_else(|_| Err(candle_core::Error::msg("candle's backward panicked")));
            let _ = reply.send(grads);
        }
    });
    let outcome = match spawned {
        Ok(_) => started.recv().map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())),
        Err(e) => Err(e.to_string()),
    };
    match previous {
        Some(v) => std::env::set_var(DO_NOT_DETACH, v),
        None => std::env::remove_var(DO_NOT_DETACH),
    }
    outcome.map(|()| requests).map_err(|e| format!("cannot start the differentiable-gradient worker: {e}"))
}

/// d/dx of sum(d(sum x^4)/dx) at x = 1 is 12 when the first gradient kept its graph, and 4 when
/// candle detached the gradient of x^2 on the way (so the worker is refused, never silently
/// first-order).
fn probe() -> Result<()> {
    let x = Var::from_tensor(&Tensor::ones(1, DType::F64, &Device::Cpu)?)?;
    let first = x.as_tensor().sqr()?.sqr()?.sum_all()?.backward()?;
    let gx = first.get(x.as_tensor()).ok_or_else(|| candle_core::Error::msg("probe: no gradient"))?;
    let second = gx.sum_all()?.backward()?;
    let value = match second.get(x.as_tensor()) {
        Some(g) => g.sum_all()?.to_scalar::<f64>()?,
        None => 0.0,
    };
    if (value - 12.0).abs() > 1e-9 {
        candle_core::bail!("candle detached the gradients ({DO_NOT_DETACH} did not take: {value} for 12)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::gradcheck::wave;

    /// f(x) = sum(x^3 * w), g = df/dx = 3 x^2 w, P = sum(g^2) = 9 sum(x^4 w^2):
    /// dP/dw = 18 x^4 w, dP/dx = 36 x^3 w^2.
    #[test]
    fn second_order_gradients_match_the_closed_form() {
        let (x, w) = (wave(&[3, 5], 0.7, 0.3), wave(&[3, 5], 1.3, 1.1));
        let f = x.as_tensor().powf(3.0).unwrap().mul(w.as_tensor()).unwrap().sum_all().unwrap();
        let grads = differentiable_grads(&f).unwrap();
        let g = grads.get(x.as_tensor()).unwrap();
        let p = g.sqr().unwrap().sum_all().unwrap();
        let second = p.backward().unwrap();
        let (xt, wt) = (x.as_tensor(), w.as_tensor());
        let dw = (xt.powf(4.0).unwrap() * wt).unwrap().affine(18.0, 0.0).unwrap();
        let dx = (xt.powf(3.0).unwrap() * wt.sqr().unwrap()).unwrap().affine(36.0, 0.0).unwrap();
        let diff = |a: &Tensor, b: &Tensor| {
            (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
        };
        assert!(diff(second.get(wt).unwrap(), &dw) < 1e-12);
        assert!(diff(second.get(xt).unwrap(), &dx) < 1e-12);
    }

    #[test]
    fn ordinary_backward_on_this_thread_stays_first_order() {
        differentiable_grads(&wave(&[2], 1.0, 0.0).as_tensor().sum_all().unwrap()).unwrap();
        let x = wave(&[4], 0.9, 0.2);
        let first = x.as_tensor().sqr().unwrap().sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let gx = first.get(x.as_tensor()).unwrap();
        let second = gx.sum_all().unwrap().backward().unwrap();
        // Detached on the way: 4 x^2 instead of 12 x^2.
        let expect = x.as_tensor().sqr().unwrap().affine(4.0, 0.0).unwrap();
        let got = second.get(x.as_tensor()).unwrap();
        let diff = (got - expect).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
        assert!(diff < 1e-12, "{diff}");
    }
}
