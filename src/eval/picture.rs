//! The confusion matrix as a PNG (`wick eval --confusion FILE.png`): a square per cell, rows
//! the targets and columns the predictions in class order, shaded from white (none of the
//! row's examples) to dark blue (all of them), so a good classifier draws a dark diagonal.
//! There is no text: the text report prints the counts and the class names.

use super::metrics::Confusion;
use crate::image::png::{encode, PngError};
use crate::image::Color;

/// Pixels a side of a cell, and of the grid line between cells.
const CELL: usize = 24;
const LINE: usize = 1;

/// The PNG file's bytes.
pub fn confusion_png(c: &Confusion) -> Result<Vec<u8>, PngError> {
    let n = c.classes.max(1);
    let side = n * CELL + (n + 1) * LINE;
    let mut pixels = vec![200u8; side * side * 3];
    for t in 0..c.classes {
        let row_total: u64 = (0..c.classes).map(|p| c.count(t, p)).sum();
        for p in 0..c.classes {
            let share = if row_total == 0 { 0.0 } else { c.count(t, p) as f64 / row_total as f64 };
            let color = shade(share);
            let (top, left) = (LINE + t * (CELL + LINE), LINE + p * (CELL + LINE));
            for y in top..top + CELL {
                for x in left..left + CELL {
                    pixels[(y * side + x) * 3..][..3].copy_from_slice(&color);
                }
            }
        }
    }
    encode(side, side, Color::Rgb, &pixels)
}

/// White at 0, a dark blue at 1.
fn shade(share: f64) -> [u8; 3] {
    let mix = |white: f64, dark: f64| (white + (dark - white) * share.clamp(0.0, 1.0)).round() as u8;
    [mix(255.0, 8.0), mix(255.0, 48.0), mix(255.0, 107.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_has_a_cell_per_pair_shaded_by_the_row_share() {
        let mut c = Confusion::new(3);
        c.add(0, 0);
        c.add(1, 2);
        let png = confusion_png(&c).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let side = 3 * CELL + 4 * LINE;
        // IHDR's width and height, big-endian, after the signature and the chunk's header.
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()) as usize, side);
        assert_eq!(shade(0.0), [255, 255, 255]);
        assert_eq!(shade(1.0), [8, 48, 107]);
    }
}
