//! Many images tiled into one: the grid of samples a generator is judged by.

use super::{Color, Image};

/// The gray of the lines between tiles and of the cells past the last image: white, so that
/// dark backgrounds (digits, tanh's -1) stay apart.
const BORDER: u8 = 255;

/// `n` images of `c` channels (1: gray, 3: RGB) and `h x w` pixels, `values` in `[n, c, h, w]`
/// order, tiled row by row into `columns` columns with `padding` pixels of border between
/// tiles. Values map linearly from `range` (lo, hi) onto 0..=255, clamped; NaN is 0.
pub fn tile(
    values: &[f32],
    [n, c, h, w]: [usize; 4],
    range: (f32, f32),
    columns: usize,
    padding: usize,
) -> Result<Image, String> {
    let color = match c {
        1 => Color::Gray,
        3 => Color::Rgb,
        _ => return Err(format!("an image has 1 (gray) or 3 (RGB) channels, found {c}")),
    };
    let (lo, hi) = range;
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(format!("the value range must be two finite numbers, low < high, found {lo}, {hi}"));
    }
    if n == 0 || h == 0 || w == 0 || columns == 0 {
        return Err(format!("nothing to draw: {n} images of {h} x {w} pixels in {columns} columns"));
    }
    let per_image = c * h * w;
    if n.checked_mul(per_image) != Some(values.len()) {
        return Err(format!("{n} x {c} x {h} x {w} values expected, found {}", values.len()));
    }
    let columns = columns.min(n);
    let rows = n.div_ceil(columns);
    let span =
        |count: usize, side: usize| count.checked_mul(side)?.checked_add((count - 1).checked_mul(padding)?);
    let too_large = || format!("a grid of {rows} x {columns} images of {h} x {w} pixels is too large");
    let width = span(columns, w).ok_or_else(too_large)?;
    let height = span(rows, h).ok_or_else(too_large)?;
    let bytes = width.checked_mul(height).and_then(|p| p.checked_mul(c)).ok_or_else(too_large)?;

    let scale = 255.0 / (hi - lo);
    let level = |v: f32| ((v - lo) * scale).round().clamp(0.0, 255.0) as u8; // NaN casts to 0
    let mut pixels = vec![BORDER; bytes];
    for (index, image) in values.chunks_exact(per_image).enumerate() {
        let (left, top) = ((index % columns) * (w + padding), (index / columns) * (h + padding));
        for y in 0..h {
            for x in 0..w {
                let at = ((top + y) * width + left + x) * c;
                for channel in 0..c {
                    pixels[at + channel] = level(image[(channel * h + y) * w + x]);
                }
            }
        }
    }
    Ok(Image { width, height, color, pixels })
}

/// Columns for `n` tiles: the smallest that makes the grid no taller than wide.
pub fn square_columns(n: usize) -> usize {
    (1..=n.max(1)).find(|c| c * c >= n).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_go_row_by_row_with_a_border_between() {
        // Three 2x2 gray images in two columns, one pixel apart: 5 x 5, the last cell empty.
        let values: Vec<f32> = (0..12).map(|i| i as f32 / 11.0).collect();
        let img = tile(&values, [3, 1, 2, 2], (0.0, 1.0), 2, 1).unwrap();
        assert_eq!((img.width, img.height, img.color), (5, 5, Color::Gray));
        let b = BORDER;
        let l = |i: usize| (i as f32 / 11.0 * 255.0).round() as u8;
        #[rustfmt::skip]
        let expected = [
            l(0), l(1), b, l(4), l(5),
            l(2), l(3), b, l(6), l(7),
            b,    b,    b, b,    b,
            l(8), l(9), b, b,    b,
            l(10), l(11), b, b,  b,
        ];
        assert_eq!(img.pixels, expected);
    }

    #[test]
    fn values_map_from_the_range_and_clamp() {
        let img = tile(&[-1.0, 0.0, 1.0, 7.0, -7.0, f32::NAN], [1, 1, 1, 6], (-1.0, 1.0), 1, 1).unwrap();
        assert_eq!(img.pixels, [0, 128, 255, 255, 0, 0]);
    }

    #[test]
    fn rgb_channels_interleave_per_pixel() {
        // One 1x2 image: red plane [0, 1], green [1, 0], blue [0, 0].
        let img = tile(&[0.0, 1.0, 1.0, 0.0, 0.0, 0.0], [1, 3, 1, 2], (0.0, 1.0), 4, 1).unwrap();
        assert_eq!((img.width, img.color), (2, Color::Rgb));
        assert_eq!(img.pixels, [0, 255, 0, 255, 0, 0]);
    }

    #[test]
    fn shapes_that_are_not_images_are_refused() {
        assert!(tile(&[0.0; 8], [1, 2, 2, 2], (0.0, 1.0), 1, 1).unwrap_err().contains("channels"));
        assert!(tile(&[0.0; 3], [1, 1, 2, 2], (0.0, 1.0), 1, 1).unwrap_err().contains("values"));
        assert!(tile(&[0.0; 4], [1, 1, 2, 2], (1.0, 1.0), 1, 1).unwrap_err().contains("range"));
    }

    #[test]
    fn square_columns_fit_n_tiles() {
        assert_eq!([1, 2, 4, 5, 64, 65].map(square_columns), [1, 2, 2, 3, 8, 9]);
    }
}
