//! Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) over a batch: each example mixed
//! with the next one (the batch rolled by one, as torchvision's `MixUp` and `CutMix` do), and
//! its target the mix of the two one-hot targets by the share each image has. Cross-entropy
//! on such soft targets is the loss both papers train with.

use candle_core::Result;

use super::config::Mixing;
use super::draw::Draw;
use super::image::Image;

/// Mixes `values` (`[N, C, H, W]`) in place; the soft targets `[N, classes]`.
pub(super) fn mix(
    values: &mut [f32],
    (n, c, h, w): (usize, usize, usize, usize),
    labels: &[i64],
    classes: usize,
    how: Mixing,
    draw: &mut Draw,
) -> Result<Vec<f32>> {
    let size = c * h * w;
    let source = values.to_vec();
    let partner = |i: usize| (i + n - 1) % n.max(1);
    let lam = match how {
        Mixing::Mixup(alpha) => {
            let lam = draw.beta(alpha);
            for i in 0..n {
                let other = &source[partner(i) * size..(partner(i) + 1) * size];
                for (v, o) in values[i * size..(i + 1) * size].iter_mut().zip(other) {
                    *v = (lam * f64::from(*v) + (1.0 - lam) * f64::from(*o)) as f32;
                }
            }
            lam
        }
        Mixing::CutMix(alpha) => {
            let (corner, (bh, bw)) = cut_box(draw.beta(alpha), h, w, draw);
            for i in 0..n {
                let other = &source[partner(i) * size..(partner(i) + 1) * size];
                let mut image = Image { pixels: &mut values[i * size..(i + 1) * size], c, h, w };
                image.paste(other, corner, (bh, bw));
            }
            // The weight is the share of the image left, once the box is clipped at the edges.
            1.0 - (bh * bw) as f64 / (h * w).max(1) as f64
        }
    };
    let mut soft = vec![0f32; n * classes];
    for (i, label) in labels.iter().enumerate() {
        let other = labels[partner(i)];
        for (class, weight) in [(*label, lam), (other, 1.0 - lam)] {
            let Some(k) = usize::try_from(class).ok().filter(|k| *k < classes) else {
                candle_core::bail!("class {class} is outside the model's {classes} classes")
            };
            soft[i * classes + k] += weight as f32;
        }
    }
    Ok(soft)
}

/// CutMix's box: `1 - lam` of the area, its centre uniform over the image, clipped at the
/// edges. The corner and the size as clipped.
pub(super) fn cut_box(lam: f64, h: usize, w: usize, draw: &mut Draw) -> ((usize, usize), (usize, usize)) {
    let r = (1.0 - lam).sqrt();
    let (ch, cw) = ((h as f64 * r) as usize, (w as f64 * r) as usize);
    let (cy, cx) = (draw.upto(h.saturating_sub(1)), draw.upto(w.saturating_sub(1)));
    let (top, bottom) = (cy.saturating_sub(ch / 2), (cy + ch / 2).min(h));
    let (left, right) = (cx.saturating_sub(cw / 2), (cx + cw / 2).min(w));
    ((top, left), (bottom - top, right - left))
}
