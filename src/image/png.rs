//! PNG encoding (ISO/IEC 15948): 8-bit gray or RGB, no interlacing, every row unfiltered.
//!
//! No deflate compressor is compiled into wick (candle's zip reader is built without one), so
//! the zlib stream holds stored blocks: the file is about as large as the pixels, which for a
//! grid of samples is a few hundred KB at most, and the encoder stays a page long.

use super::Color;

/// Why an image cannot be a PNG.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode a PNG: {0}")]
pub struct PngError(String);

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
/// The most bytes a stored deflate block holds (its length is 16 bits).
const STORED_BLOCK: usize = 65_535;

/// A PNG file of `pixels` (`height` rows of `width` pixels, `color.channels()` bytes each).
pub fn encode(width: usize, height: usize, color: Color, pixels: &[u8]) -> Result<Vec<u8>, PngError> {
    // The format's limit for either side.
    let side = |n: usize, what: &str| match u32::try_from(n) {
        Ok(v) if (1..=i32::MAX as u32).contains(&v) => Ok(v),
        _ => Err(PngError(format!("the {what} must be 1 to 2^31 - 1 pixels, found {n}"))),
    };
    let (w, h) = (side(width, "width")?, side(height, "height")?);
    let row = width
        .checked_mul(color.channels())
        .ok_or_else(|| PngError(format!("a row of {width} pixels is too long")))?;
    if row.checked_mul(height) != Some(pixels.len()) {
        return Err(PngError(format!(
            "{width} x {height} pixels of {} bytes need {row} x {height} bytes, found {}",
            color.channels(),
            pixels.len()
        )));
    }
    // Each row starts with its filter type: 0, none.
    let mut scanlines = Vec::with_capacity(pixels.len() + height);
    for line in pixels.chunks_exact(row) {
        scanlines.push(0);
        scanlines.extend_from_slice(line);
    }

    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&w.to_be_bytes());
    header.extend_from_slice(&h.to_be_bytes());
    // Bit depth 8; colour type 0 (gray) or 2 (RGB); deflate; filter method 0; no interlace.
    let color_type = match color {
        Color::Gray => 0,
        Color::Rgb => 2,
    };
    header.extend_from_slice(&[8, color_type, 0, 0, 0]);

    let mut file = SIGNATURE.to_vec();
    chunk(&mut file, b"IHDR", &header);
    chunk(&mut file, b"IDAT", &zlib_stored(&scanlines));
    chunk(&mut file, b"IEND", &[]);
    Ok(file)
}

/// Length, type, data, and the CRC-32 of type and data.
fn chunk(file: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    // Callers keep data far below 2^31 bytes: an IDAT of a grid a PNG can describe at all.
    file.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = file.len();
    file.extend_from_slice(kind);
    file.extend_from_slice(data);
    let crc = crc32fast::hash(&file[start..]);
    file.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951, BTYPE 00).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let blocks = data.len().div_ceil(STORED_BLOCK).max(1);
    let mut out = Vec::with_capacity(data.len() + 5 * blocks + 6);
    // CMF: deflate with a 32 KiB window; FLG: no dictionary, check bits making CMF.FLG % 31 == 0.
    out.extend_from_slice(&[0x78, 0x01]);
    let mut pieces = data.chunks(STORED_BLOCK).peekable();
    if pieces.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(piece) = pieces.next() {
        let last = pieces.peek().is_none();
        let len = piece.len() as u16;
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(piece);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// The zlib stream's checksum of the uncompressed bytes.
pub(crate) fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    // 5552 bytes is the most that can be summed before the u32 sums need reducing.
    let (mut a, mut b) = (1u32, 0u32);
    for block in data.chunks(5552) {
        for &byte in block {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunks of a PNG, each checked against its CRC.
    fn chunks(file: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
        assert_eq!(file[..8], SIGNATURE);
        let mut rest = &file[8..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let kind: [u8; 4] = rest[4..8].try_into().unwrap();
            let data = rest[8..8 + len].to_vec();
            let crc = u32::from_be_bytes(rest[8 + len..12 + len].try_into().unwrap());
            assert_eq!(crc, crc32fast::hash(&rest[4..8 + len]), "CRC of {}", String::from_utf8_lossy(&kind));
            out.push((kind, data));
            rest = &rest[12 + len..];
        }
        out
    }

    /// Inflates a zlib stream of stored blocks, checking the header, every block's NLEN and the
    /// Adler-32 (no inflater is compiled into wick to check against).
    fn inflate_stored(stream: &[u8]) -> Vec<u8> {
        assert_eq!(u16::from_be_bytes([stream[0], stream[1]]) % 31, 0, "zlib header check bits");
        assert_eq!(stream[0] & 0x0f, 8, "deflate");
        let mut at = 2;
        let mut out = Vec::new();
        loop {
            let head = stream[at];
            assert_eq!(head >> 1, 0, "a stored block");
            let len = u16::from_le_bytes([stream[at + 1], stream[at + 2]]);
            let nlen = u16::from_le_bytes([stream[at + 3], stream[at + 4]]);
            assert_eq!(len, !nlen);
            out.extend_from_slice(&stream[at + 5..at + 5 + len as usize]);
            at += 5 + len as usize;
            if head & 1 == 1 {
                break;
            }
        }
        let adler = u32::from_be_bytes(stream[at..at + 4].try_into().unwrap());
        assert_eq!(adler, adler32(&out));
        assert_eq!(at + 4, stream.len(), "nothing after the checksum");
        out
    }

    #[test]
    fn adler32_matches_the_rfc_example() {
        // RFC 1950's checksum of "Wikipedia", as quoted everywhere: 0x11E60398.
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(&[]), 1);
        // Past one reduction block, against the definition summed in u64.
        let long: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &long {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(adler32(&long), ((b << 16) | a) as u32);
    }

    #[test]
    fn a_gray_png_has_its_header_and_rows() {
        let pixels = [0, 10, 20, 30, 40, 50];
        let file = encode(3, 2, Color::Gray, &pixels).unwrap();
        let chunks = chunks(&file);
        let kinds: Vec<&[u8]> = chunks.iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(kinds, [&b"IHDR"[..], b"IDAT", b"IEND"]);
        assert_eq!(chunks[0].1, [0, 0, 0, 3, 0, 0, 0, 2, 8, 0, 0, 0, 0]);
        assert_eq!(inflate_stored(&chunks[1].1), [0, 0, 10, 20, 0, 30, 40, 50]);
        assert!(chunks[2].1.is_empty());
    }

    #[test]
    fn a_large_rgb_image_spans_several_stored_blocks() {
        let (w, h) = (200, 150);
        let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        let file = encode(w, h, Color::Rgb, &pixels).unwrap();
        let chunks = chunks(&file);
        assert_eq!(chunks[0].1[9], 2, "colour type RGB");
        let rows = inflate_stored(&chunks[1].1);
        assert_eq!(rows.len(), h * (1 + 3 * w));
        assert!(rows.len() > STORED_BLOCK);
        for (y, row) in rows.chunks(1 + 3 * w).enumerate() {
            assert_eq!(row[0], 0, "filter byte");
            assert_eq!(&row[1..], &pixels[y * 3 * w..(y + 1) * 3 * w]);
        }
    }

    #[test]
    fn sizes_that_do_not_fit_are_refused() {
        assert!(encode(3, 2, Color::Gray, &[0; 5]).is_err());
        assert!(encode(0, 2, Color::Gray, &[]).is_err());
        assert!(encode(2, 2, Color::Rgb, &[0; 4]).is_err());
    }
}
