//! One example's pixels, `C × H × W` f32, and the changes augmentation makes to them. Areas
//! uncovered by a crop, a move or a rotation are 0: after `mean`/`std` normalisation, the
//! mean colour.

use super::config::Erase;
use super::draw::Draw;

pub(super) struct Image<'a> {
    pub pixels: &'a mut [f32],
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Image<'_> {
    fn at(&self, k: usize, y: usize, x: usize) -> usize {
        (k * self.h + y) * self.w + x
    }

    /// Pad by `padding` zeros on every side, then take an `H × W` window at a place drawn
    /// uniformly (torchvision's `RandomCrop(size, padding)`).
    pub fn crop_padded(&mut self, padding: usize, draw: &mut Draw) {
        let (oy, ox) = (draw.upto(2 * padding), draw.upto(2 * padding));
        let source = self.pixels.to_vec();
        for k in 0..self.c {
            for y in 0..self.h {
                for x in 0..self.w {
                    let (sy, sx) = ((y + oy).checked_sub(padding), (x + ox).checked_sub(padding));
                    let value = match (sy, sx) {
                        (Some(sy), Some(sx)) if sy < self.h && sx < self.w => source[self.at(k, sy, sx)],
                        _ => 0.0,
                    };
                    let i = self.at(k, y, x);
                    self.pixels[i] = value;
                }
            }
        }
    }

    pub fn flip_horizontal(&mut self) {
        let w = self.w;
        for row in self.pixels.chunks_exact_mut(w) {
            row.reverse();
        }
    }

    pub fn flip_vertical(&mut self) {
        let (h, w) = (self.h, self.w);
        for plane in self.pixels.chunks_exact_mut(h * w) {
            for y in 0..h / 2 {
                let (top, bottom) = plane.split_at_mut((h - 1 - y) * w);
                top[y * w..(y + 1) * w].swap_with_slice(&mut bottom[..w]);
            }
        }
    }

    /// Rotate by `angle` (radians, counter-clockwise as seen), scale by `scale` about the
    /// centre, then move by `shift` pixels; sampled bilinearly from the source.
    pub fn affine(&mut self, angle: f64, shift: (f64, f64), scale: f64) {
        let source = self.pixels.to_vec();
        let (cy, cx) = ((self.h as f64 - 1.0) / 2.0, (self.w as f64 - 1.0) / 2.0);
        let (sin, cos) = angle.sin_cos();
        for y in 0..self.h {
            for x in 0..self.w {
                // The inverse map: where this output pixel comes from.
                let (u, v) = ((x as f64 - cx - shift.0) / scale, (y as f64 - cy - shift.1) / scale);
                let (sx, sy) = (cos * u - sin * v + cx, sin * u + cos * v + cy);
                for k in 0..self.c {
                    let value = self.bilinear(&source, k, sy, sx);
                    let i = self.at(k, y, x);
                    self.pixels[i] = value;
                }
            }
        }
    }

    /// Channel `k` of `source` at a fractional place; 0 outside.
    fn bilinear(&self, source: &[f32], k: usize, y: f64, x: f64) -> f32 {
        let (y0, x0) = (y.floor(), x.floor());
        let (fy, fx) = (y - y0, x - x0);
        let mut sum = 0.0;
        for (dy, wy) in [(0.0, 1.0 - fy), (1.0, fy)] {
            for (dx, wx) in [(0.0, 1.0 - fx), (1.0, fx)] {
                let (yy, xx) = (y0 + dy, x0 + dx);
                if yy >= 0.0 && xx >= 0.0 && (yy as usize) < self.h && (xx as usize) < self.w {
                    sum += wy * wx * f64::from(source[self.at(k, yy as usize, xx as usize)]);
                }
            }
        }
        sum as f32
    }

    pub fn brightness(&mut self, factor: f64) {
        for p in self.pixels.iter_mut() {
            *p = (f64::from(*p) * factor) as f32;
        }
    }

    /// Scale each pixel's distance from the image's mean by `factor`.
    pub fn contrast(&mut self, factor: f64) {
        let n = self.pixels.len().max(1) as f64;
        let mean = self.pixels.iter().map(|p| f64::from(*p)).sum::<f64>() / n;
        for p in self.pixels.iter_mut() {
            *p = ((f64::from(*p) - mean) * factor + mean) as f32;
        }
    }

    pub fn noise(&mut self, std: f64, draw: &mut Draw) {
        for p in self.pixels.iter_mut() {
            *p = (f64::from(*p) + std * draw.normal()) as f32;
        }
    }

    /// torchvision's `RandomErasing`: up to ten tries at a rectangle that fits.
    pub fn erase(&mut self, erase: &Erase, draw: &mut Draw) {
        let area = (self.h * self.w) as f64;
        let (lo, hi) = (erase.ratio.0.ln(), erase.ratio.1.ln());
        for _ in 0..10 {
            let target = area * draw.between(erase.scale.0, erase.scale.1);
            let ratio = draw.between(lo, hi).exp();
            let eh = (target * ratio).sqrt().round() as usize;
            let ew = (target / ratio).sqrt().round() as usize;
            if eh == 0 || ew == 0 || eh >= self.h || ew >= self.w {
                continue;
            }
            let (top, left) = (draw.upto(self.h - eh), draw.upto(self.w - ew));
            self.fill((top, left), (eh, ew), erase.value as f32);
            return;
        }
    }

    /// Every channel of the `size` rectangle at `corner` set to `value`.
    pub fn fill(&mut self, corner: (usize, usize), size: (usize, usize), value: f32) {
        for k in 0..self.c {
            for y in corner.0..corner.0 + size.0 {
                let i = self.at(k, y, corner.1);
                self.pixels[i..i + size.1].fill(value);
            }
        }
    }

    /// The `size` rectangle at `corner` of `other` (an image of the same shape) copied in.
    pub fn paste(&mut self, other: &[f32], corner: (usize, usize), size: (usize, usize)) {
        for k in 0..self.c {
            for y in corner.0..corner.0 + size.0 {
                let i = self.at(k, y, corner.1);
                self.pixels[i..i + size.1].copy_from_slice(&other[i..i + size.1]);
            }
        }
    }
}
