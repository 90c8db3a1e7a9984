//! The image settings of `data:` (`size`, `center_crop`, `channels`, `mean`, `std`), checked.

use super::RawData;
use crate::train::data::images::{ImageOptions, Size};

/// The settings of an `images` source; `None` when there is none (and then none may be set).
pub(super) fn image_options(raw: &RawData) -> Result<Option<ImageOptions>, String> {
    let set = [
        ("size", raw.size.is_some()),
        ("center_crop", raw.center_crop.is_some()),
        ("channels", raw.channels.is_some()),
        ("mean", raw.mean.is_some()),
        ("std", raw.std.is_some()),
    ];
    let images = raw.images.is_some() || raw.val.as_ref().is_some_and(|v| v.images.is_some());
    if !images {
        return match set.iter().find(|(_, given)| *given) {
            Some((key, _)) => Err(format!("`{key}` belongs to an `images` source")),
            None => Ok(None),
        };
    }
    let channels = raw.channels.unwrap_or(3);
    if channels != 1 && channels != 3 {
        return Err(format!("`channels` is 1 (grayscale) or 3 (RGB), found {channels}"));
    }
    let side = |key: &str, v: &[usize]| match v {
        [h, w] if *h > 0 && *w > 0 => Ok((*h, *w)),
        [n] if *n > 0 => Ok((*n, *n)),
        _ => Err(format!("`{key}` is `[h, w]` or one side, positive, found {v:?}")),
    };
    let size = match raw.size.as_deref() {
        None => None,
        Some([n]) if *n > 0 => Some(Size::ShorterSide(*n)),
        Some(v) => side("size", v).map(|(h, w)| Some(Size::Exact(h, w)))?,
    };
    let center_crop = raw.center_crop.as_deref().map(|v| side("center_crop", v)).transpose()?;
    let per_channel = |key: &str, v: Option<&Vec<f64>>, default: f64| match v {
        None => Ok(vec![default]),
        Some(v) if v.len() == 1 || v.len() == channels => Ok(v.clone()),
        Some(v) => Err(format!("`{key}` has one value or one per channel ({channels}), found {}", v.len())),
    };
    let (mean, std) =
        (per_channel("mean", raw.mean.as_ref(), 0.0)?, per_channel("std", raw.std.as_ref(), 1.0)?);
    if let Some(s) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(format!("`std` values must be positive, found {s}"));
    }
    if mean.iter().any(|m| !m.is_finite()) {
        return Err("`mean` values must be finite".into());
    }
    if let Some((h, w)) = center_crop.or(match size {
        Some(Size::Exact(h, w)) => Some((h, w)),
        _ => None,
    }) {
        if (h as u64) * (w as u64) > 1 << 26 {
            return Err(format!("images of {h} × {w} are more than 64 megapixels"));
        }
    }
    if let Some(Size::ShorterSide(n)) = size {
        if n > 1 << 13 {
            return Err(format!("`size: {n}` is more than 8192 pixels a side"));
        }
    }
    Ok(Some(ImageOptions { size, center_crop, channels, mean, std }))
}
