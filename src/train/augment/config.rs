//! `augment:` as written under `data:`, and its check.

use serde::Deserialize;

use super::draw::Draw;
use super::image::Image;
use crate::train::data::one_or_many;

/// What to change in each training example, each with its probability or range; a key left
/// out changes nothing.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Pad by `padding` on every side, then cut an image of the original size at a random place.
    pub crop: Option<Crop>,
    /// Probabilities of a left-right and an upside-down flip.
    #[serde(default)]
    pub hflip: f64,
    #[serde(default)]
    pub vflip: f64,
    /// Rotate by an angle uniform in ±`rotate` degrees.
    #[serde(default)]
    pub rotate: f64,
    /// Move by up to these fractions of the width and the height (torchvision's `translate`).
    pub translate: Option<(f64, f64)>,
    /// Scale by a factor uniform in `[lo, hi]`.
    pub scale: Option<(f64, f64)>,
    /// Multiply by a factor uniform in `[1 - b, 1 + b]`.
    #[serde(default)]
    pub brightness: f64,
    /// Move away from (or towards) the image's mean by a factor uniform in `[1 - c, 1 + c]`.
    #[serde(default)]
    pub contrast: f64,
    /// Add Gaussian noise of this deviation.
    #[serde(default)]
    pub noise: f64,
    pub erase: Option<Erase>,
    /// Mixup's and CutMix's alpha: the mixing weight is drawn from Beta(alpha, alpha) per batch.
    pub mixup: Option<f64>,
    pub cutmix: Option<f64>,
    /// How many augmented batches a background thread keeps ready.
    #[serde(default = "prefetch")]
    pub prefetch: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crop {
    /// The crop's `[h, w]` (or one side): the image's own, since validation is not cropped.
    #[serde(default, deserialize_with = "some_sides")]
    pub size: Option<Vec<usize>>,
    #[serde(default)]
    pub padding: usize,
}

/// Random erasing (torchvision's `RandomErasing`): with probability `p`, a rectangle of
/// `scale` of the area and aspect ratio in `ratio` (log-uniform) set to `value`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Erase {
    pub p: f64,
    #[serde(default = "erase_scale")]
    pub scale: (f64, f64),
    #[serde(default = "erase_ratio")]
    pub ratio: (f64, f64),
    #[serde(default)]
    pub value: f64,
}

impl Default for Augment {
    /// Changes nothing.
    fn default() -> Self {
        Augment {
            crop: None,
            hflip: 0.0,
            vflip: 0.0,
            rotate: 0.0,
            translate: None,
            scale: None,
            brightness: 0.0,
            contrast: 0.0,
            noise: 0.0,
            erase: None,
            mixup: None,
            cutmix: None,
            prefetch: prefetch(),
        }
    }
}

fn prefetch() -> usize {
    4
}
fn erase_scale() -> (f64, f64) {
    (0.02, 0.33)
}
fn erase_ratio() -> (f64, f64) {
    (0.3, 3.3)
}

fn some_sides<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<usize>>, D::Error> {
    one_or_many(d).map(Some)
}

/// Which way a batch is mixed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Mixing {
    Mixup(f64),
    CutMix(f64),
}

impl Augment {
    /// The same settings, refused when one is out of its range.
    pub fn checked(self) -> Result<Augment, String> {
        let probability = |key: &str, p: f64| match (0.0..=1.0).contains(&p) {
            true => Ok(()),
            false => Err(format!("`{key}` is a probability, in [0, 1]; found {p}")),
        };
        probability("hflip", self.hflip)?;
        probability("vflip", self.vflip)?;
        let within = |key: &str, v: f64, hi: f64| match v >= 0.0 && v < hi {
            true => Ok(()),
            false => Err(format!("`{key}` must be in [0, {hi}); found {v}")),
        };
        within("rotate", self.rotate, 180.0)?;
        within("brightness", self.brightness, 1.0)?;
        within("contrast", self.contrast, 1.0)?;
        within("noise", self.noise, 1e6)?;
        if let Some((x, y)) = self.translate {
            within("translate", x, 1.0)?;
            within("translate", y, 1.0)?;
        }
        let range = |key: &str, (lo, hi): (f64, f64), top: f64| match lo > 0.0 && lo <= hi && hi <= top {
            true => Ok(()),
            false => Err(format!("`{key}: [{lo}, {hi}]` needs 0 < low <= high <= {top}")),
        };
        if let Some(s) = self.scale {
            range("scale", s, 10.0)?;
        }
        if let Some(e) = &self.erase {
            probability("erase.p", e.p)?;
            range("erase.scale", e.scale, 1.0)?;
            range("erase.ratio", e.ratio, 100.0)?;
            if !e.value.is_finite() {
                return Err("`erase.value` must be finite".into());
            }
        }
        for (key, alpha) in [("mixup", self.mixup), ("cutmix", self.cutmix)] {
            if let Some(a) = alpha.filter(|a| !(*a > 0.0 && *a <= 100.0)) {
                return Err(format!("`{key}` is Beta's alpha, in (0, 100]; found {a}"));
            }
        }
        if let Some(crop) = &self.crop {
            if crop.padding > 1024 {
                return Err(format!("`crop.padding` is at most 1024 pixels, found {}", crop.padding));
            }
            match crop.size.as_deref() {
                None | Some([_]) | Some([_, _]) => {}
                Some(v) => return Err(format!("`crop.size` is `[h, w]` or one side, found {v:?}")),
            }
        }
        if !(1..=64).contains(&self.prefetch) {
            return Err(format!("`prefetch` is in 1..=64 batches, found {}", self.prefetch));
        }
        Ok(self)
    }

    /// Whether batches are mixed (and targets made soft).
    pub fn mixes(&self) -> bool {
        self.mixup.is_some() || self.cutmix.is_some()
    }

    /// The image shape `[C, H, W]` the features must have, checked: the crop's size is the
    /// image's own.
    pub fn check_shape(&self, example: &[usize]) -> Result<(), String> {
        let &[_, h, w] = example else {
            return Err(format!(
                "`augment` takes images [C, H, W]; each example is {example:?}: set `data.shape`"
            ));
        };
        if let Some(size) = self.crop.as_ref().and_then(|c| c.size.as_deref()) {
            let (ch, cw) = match size {
                [n] => (*n, *n),
                [a, b, ..] => (*a, *b),
                [] => (h, w),
            };
            if (ch, cw) != (h, w) {
                return Err(format!(
                    "`crop.size` is [{ch}, {cw}] but the images are [{h}, {w}]: a random crop keeps \
                     the image's size (validation is not cropped); set `size` or `center_crop` to \
                     change it"
                ));
            }
        }
        Ok(())
    }

    /// One example changed in place, in torchvision's usual order: crop, flips, affine,
    /// colour, noise, erasing.
    pub(super) fn example(&self, image: &mut Image, draw: &mut Draw) {
        if let Some(crop) = &self.crop {
            image.crop_padded(crop.padding, draw);
        }
        if draw.chance(self.hflip) {
            image.flip_horizontal();
        }
        if draw.chance(self.vflip) {
            image.flip_vertical();
        }
        let (tx, ty) = self.translate.unwrap_or((0.0, 0.0));
        let scale = self.scale.unwrap_or((1.0, 1.0));
        if self.rotate > 0.0 || tx > 0.0 || ty > 0.0 || scale != (1.0, 1.0) {
            let angle = draw.between(-self.rotate, self.rotate).to_radians();
            let dx = draw.between(-tx, tx) * image.w as f64;
            let dy = draw.between(-ty, ty) * image.h as f64;
            let s = draw.between(scale.0, scale.1);
            image.affine(angle, (dx, dy), s);
        }
        if self.brightness > 0.0 {
            image.brightness(draw.between(1.0 - self.brightness, 1.0 + self.brightness));
        }
        if self.contrast > 0.0 {
            image.contrast(draw.between(1.0 - self.contrast, 1.0 + self.contrast));
        }
        if self.noise > 0.0 {
            image.noise(self.noise, draw);
        }
        if let Some(erase) = &self.erase {
            if draw.chance(erase.p) {
                image.erase(erase, draw);
            }
        }
    }

    /// How this batch is mixed: mixup, CutMix, or (both set) one of them at even odds.
    pub(super) fn mixing(&self, draw: &mut Draw) -> Option<Mixing> {
        match (self.mixup, self.cutmix) {
            (Some(m), Some(c)) => Some(if draw.chance(0.5) { Mixing::Mixup(m) } else { Mixing::CutMix(c) }),
            (Some(m), None) => Some(Mixing::Mixup(m)),
            (None, Some(c)) => Some(Mixing::CutMix(c)),
            (None, None) => None,
        }
    }
}
