//! The CPU ops on an input and a weight with an optional bias (linear layers, convolutions):
//! one implementation serves as candle's two-input op (no bias) and as its three-input op.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

/// Gradients of the input, the weight and the bias, each where it is tracked.
pub type Grads = (Option<Tensor>, Option<Tensor>, Option<Tensor>);

/// A CPU operand: its storage and layout.
pub type Operand<'a> = (&'a CpuStorage, &'a Layout);

pub trait WeightedOp: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn cpu(&self, x: Operand<'_>, w: Operand<'_>, bias: Option<Operand<'_>>) -> Result<(CpuStorage, Shape)>;
    /// `grad` is contiguous; `bias` is None when the op has none.
    fn backward(&self, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, grad: &Tensor) -> Result<Grads>;
}

/// `op` on `x`, `w` and `bias`, all made contiguous.
pub fn apply<O: WeightedOp>(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, op: O) -> Result<Tensor> {
    let (x, w) = (x.contiguous()?, w.contiguous()?);
    match bias {
        Some(b) => x.apply_op3(&w, &b.contiguous()?, Weighted(op)),
        None => x.apply_op2(&w, Weighted(op)),
    }
}

struct Weighted<O>(O);

impl<O: WeightedOp> CustomOp2 for Weighted<O> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.0.cpu((s1, l1), (s2, l2), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.0.backward(x, w, None, &grad.contiguous()?)?;
        Ok((dx, dw))
    }
}

impl<O: WeightedOp> CustomOp3 for Weighted<O> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.0.cpu((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Grads> {
        self.0.backward(x, w, Some(b), &grad.contiguous()?)
    }
}
