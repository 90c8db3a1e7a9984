//! The IDX format of MNIST and its relatives (`train-images-idx3-ubyte`): two zero bytes, a
//! type code, a rank, big-endian u32 dims, then the values. Only u8 payloads (every MNIST-like
//! set uses them), plain or gzip-compressed (MNIST's own `.gz` files).

use std::path::Path;

use candle_core::{Device, Tensor};

use super::convert::{count, Named, Raw};
use super::DataError;
use crate::train::files;

/// Images `[N, H, W]` become `[N, 1, H, W]` (one channel, as a CNN takes them); labels `[N]`.
pub(super) fn read(images: &Path, labels: Option<&Path>) -> Result<Raw, DataError> {
    let x = read_file(images)?;
    let x = match x.tensor.rank() {
        3 => Named { tensor: x.tensor.unsqueeze(1)?, what: x.what },
        _ => x,
    };
    let y = labels.map(read_file).transpose()?;
    Ok(Raw { x, y })
}

/// One IDX file as a u8 tensor of its own shape.
fn read_file(path: &Path) -> Result<Named, DataError> {
    let shown = path.display().to_string();
    // The dims the header declares are checked against these bytes before a tensor is made.
    let bytes = files::read_regular(path).map_err(|source| DataError::Io { path: shown.clone(), source })?;
    let bytes = match bytes.starts_with(&[0x1f, 0x8b]) {
        true => gunzip(&bytes).map_err(|message| DataError::Array { what: format!("`{shown}`"), message })?,
        false => bytes,
    };
    let tensor = parse(&bytes).map_err(|message| DataError::Array { what: format!("`{shown}`"), message })?;
    Ok(Named::new(format!("`{shown}`"), tensor))
}

/// A gzip-compressed IDX file's bytes. What is decompressed is bounded by what the header's
/// dims declare (plus one byte, to tell a longer stream), and the dims by what deflate can
/// expand the file to, so a lying header or a decompression bomb cannot take unbounded memory.
fn gunzip(compressed: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut stream = flate2::read::GzDecoder::new(compressed);
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).map_err(|e| format!("cannot decompress it: {e}"))?;
    let mut header = head.to_vec();
    let mut dims = vec![0u8; 4 * usize::from(head[3])];
    stream
        .read_exact(&mut dims)
        .map_err(|_| format!("the header is cut short: {} dims announced", head[3]))?;
    header.extend(&dims);
    let declared = dims
        .chunks_exact(4)
        .try_fold(1u64, |n, b| n.checked_mul(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))))
        .unwrap_or(u64::MAX);
    let most = super::zip::most_inflated(compressed.len() as u64);
    if declared > most {
        return Err(format!(
            "the header declares {declared} values; {} compressed bytes can hold at most {most}",
            compressed.len()
        ));
    }
    let mut values = Vec::new();
    values
        .try_reserve_exact(declared as usize)
        .map_err(|_| format!("{declared} values need more than memory"))?;
    stream.take(declared + 1).read_to_end(&mut values).map_err(|e| format!("cannot decompress it: {e}"))?;
    header.extend(values);
    Ok(header)
}

fn parse(bytes: &[u8]) -> Result<Tensor, String> {
    let [0, 0, code, rank, ..] = *bytes else {
        return Err("not an IDX file: expected two zero bytes, a type code and a rank".into());
    };
    if code != 0x08 {
        let name = match code {
            0x09 => "i8",
            0x0B => "i16",
            0x0C => "i32",
            0x0D => "f32",
            0x0E => "f64",
            _ => "unknown",
        };
        return Err(format!("type code 0x{code:02X} ({name}); expected 0x08 (u8)"));
    }
    let header = 4 + 4 * rank as usize;
    let dims: Vec<usize> = bytes
        .get(4..header)
        .ok_or_else(|| format!("the header is cut short: {rank} dims announced"))?
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let expected = count(&dims);
    let found = bytes.len() - header;
    if expected != Some(found) {
        let expected = expected.map_or("more than memory".to_string(), |e| e.to_string());
        return Err(format!("dims {dims:?} need {expected} bytes of values, found {found}"));
    }
    Tensor::from_slice(&bytes[header..], dims, &Device::Cpu).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::data::test_dir;

    /// An IDX file of u8 values with the given dims.
    fn idx_bytes(dims: &[u32], values: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            out.extend(d.to_be_bytes());
        }
        out.extend(values);
        out
    }

    #[test]
    fn images_gain_a_channel_axis() {
        let dir = test_dir("idx");
        let (images, labels) = (dir.join("images-idx3-ubyte"), dir.join("labels-idx1-ubyte"));
        std::fs::write(&images, idx_bytes(&[2, 2, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])).unwrap();
        std::fs::write(&labels, idx_bytes(&[2], &[7, 3])).unwrap();
        let raw = read(&images, Some(&labels)).unwrap();
        assert_eq!(raw.x.tensor.dims(), &[2, 1, 2, 3]);
        assert_eq!(raw.y.unwrap().tensor.to_vec1::<u8>().unwrap(), [7, 3]);
    }

    #[test]
    fn gzip_files_read_as_plain_ones_and_lying_headers_are_refused() {
        use std::io::Write;
        let gz = |bytes: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(bytes).unwrap();
            e.finish().unwrap()
        };
        let dir = test_dir("idx-gz");
        let images = dir.join("images-idx3-ubyte.gz");
        std::fs::write(&images, gz(&idx_bytes(&[2, 1, 3], &[1, 2, 3, 4, 5, 6]))).unwrap();
        let raw = read(&images, None).unwrap();
        assert_eq!(raw.x.tensor.dims(), &[2, 1, 1, 3]);
        assert_eq!(raw.x.tensor.flatten_all().unwrap().to_vec1::<u8>().unwrap(), [1, 2, 3, 4, 5, 6]);
        // A header that claims a billion values in a few bytes is refused before any is read.
        let e = gunzip(&gz(&idx_bytes(&[1 << 15, 1 << 15], &[0; 16]))).unwrap_err();
        assert!(e.contains("declares 1073741824 values"), "{e}");
        // A stream longer than its header says is an error as a plain file's would be.
        let e = parse(&gunzip(&gz(&idx_bytes(&[2], &[1, 2, 3]))).unwrap()).unwrap_err();
        assert_eq!(e, "dims [2] need 2 bytes of values, found 3");
        assert!(gunzip(&[0x1f, 0x8b, 8, 0, 1, 2]).unwrap_err().starts_with("cannot decompress it"));
    }

    #[test]
    fn bad_files_say_what_was_found() {
        assert_eq!(
            parse(&[0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap_err(),
            "type code 0x0D (f32); expected 0x08 (u8)"
        );
        assert_eq!(
            parse(&idx_bytes(&[2, 2], &[1, 2, 3])).unwrap_err(),
            "dims [2, 2] need 4 bytes of values, found 3"
        );
        assert!(parse(b"P5\n").unwrap_err().starts_with("not an IDX file"));
    }
}
