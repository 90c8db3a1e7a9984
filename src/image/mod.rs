//! Pictures of tensors: a grid of images from a `[n, c, h, w]` array of floats, and the PNG
//! file that holds it. No candle types, so the compiler half can draw with it too.

pub mod grid;
// The chunk checksums come from crc32fast, a dependency of the `lower` feature only.
#[cfg(feature = "lower")]
pub mod png;

/// How a pixel's bytes read: one gray level, or red, green and blue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    Gray,
    Rgb,
}

impl Color {
    /// Bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            Color::Gray => 1,
            Color::Rgb => 3,
        }
    }
}

/// An 8-bit image, rows top to bottom, each row's pixels left to right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub color: Color,
    pub pixels: Vec<u8>,
}
