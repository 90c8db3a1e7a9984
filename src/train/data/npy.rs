//! numpy's `.npy` files and `.npz` archives. candle reads the payloads; the header is read here
//! first so that what candle cannot take (Fortran order, big-endian, odd dtypes) is refused
//! with the file, its dtype and its shape named.

use std::io::{Read, Seek};
use std::path::Path;

use candle_core::npy::NpzTensors;
use candle_core::Tensor;

use super::convert::{count, Named};
use super::DataError;

/// What a `.npy` header says.
#[derive(Debug, PartialEq)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

const SUPPORTED: [&str; 8] = ["<f4", "<f8", "<f2", "<i8", "<i4", "<i2", "|u1", "<u4"];

/// One `.npy` file.
pub(super) fn read_npy(path: &Path) -> Result<Named, DataError> {
    let shown = path.display().to_string();
    let bad = |message: String| DataError::Array { what: format!("`{shown}`"), message };
    let mut file =
        std::fs::File::open(path).map_err(|source| DataError::Io { path: shown.clone(), source })?;
    let header = read_header(&mut file).map_err(bad)?;
    let found = format!("dtype `{}`, shape {:?}", header.descr, header.shape);
    if header.fortran_order {
        return Err(bad(format!(
            "the array is in Fortran (column-major) order ({found}); expected C order: save \
             `np.ascontiguousarray(a)` instead"
        )));
    }
    if !SUPPORTED.contains(&header.descr.replace('=', "<").as_str()) {
        return Err(bad(format!(
            "unsupported {found}; expected little-endian f32, f64, f16, i64, i32, i16, u8 or u32"
        )));
    }
    // The header's shape against the file's size, before candle allocates for it.
    let item = header.descr[2..].parse::<usize>().unwrap_or(1);
    let payload = file.stream_position().and_then(|at| Ok(file.metadata()?.len() - at));
    let payload = payload.map_err(|source| DataError::Io { path: shown.clone(), source })?;
    let expected = count(&header.shape).and_then(|n| n.checked_mul(item));
    if expected != Some(payload as usize) {
        let expected = expected.map_or("more than memory".to_string(), |n| format!("{n} bytes"));
        return Err(bad(format!("{found} needs {expected} of values, the file holds {payload}")));
    }
    let tensor = Tensor::read_npy(path).map_err(|e| bad(format!("{found}: {e}")))?;
    Ok(Named::new(format!("`{shown}`"), tensor))
}

/// The array `name` of a `.npz` archive.
pub(super) fn read_npz(path: &Path, name: &str) -> Result<Named, DataError> {
    let shown = path.display().to_string();
    let what = format!("`{shown}` array `{name}`");
    if !path.is_file() {
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        return Err(DataError::Io { path: shown, source });
    }
    let archive = NpzTensors::new(path).map_err(|e| DataError::Array {
        what: format!("`{shown}`"),
        message: format!("not a .npz archive: {e}"),
    })?;
    let tensor = archive.get(name).map_err(|e| DataError::Array {
        what: what.clone(),
        message: format!(
            "{e}; expected an uncompressed C-order array as `np.savez` writes \
             (`np.savez_compressed` archives need a codec wick is built without)"
        ),
    })?;
    let Some(tensor) = tensor else {
        let mut names: Vec<String> = archive
            .names()
            .into_iter()
            .map(|n| match archive.get_shape_and_dtype(n) {
                Ok((shape, dtype)) => format!("{n} {:?} {}", shape.dims(), super::convert::dtype_name(dtype)),
                Err(_) => n.clone(),
            })
            .collect();
        names.sort();
        return Err(DataError::Array {
            what: format!("`{shown}`"),
            message: format!("no array `{name}`; the archive holds {}", names.join(", ")),
        });
    };
    Ok(Named::new(what, tensor))
}

/// Magic, version, header length, then the header: a Python dict literal.
fn read_header(r: &mut impl Read) -> Result<Header, String> {
    let mut fixed = [0u8; 8];
    r.read_exact(&mut fixed).map_err(|_| "too short for a .npy file".to_string())?;
    if &fixed[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (it does not start with \\x93NUMPY)".into());
    }
    let len = match fixed[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(|e| e.to_string())?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(|e| e.to_string())?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(format!("unknown .npy format version {v}")),
    };
    let mut text = vec![0u8; len];
    r.read_exact(&mut text).map_err(|_| "the header is cut short".to_string())?;
    parse_header(&String::from_utf8_lossy(&text))
}

/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`
fn parse_header(text: &str) -> Result<Header, String> {
    let bad = || format!("unreadable header `{}`", text.trim());
    let after = |key: &str| text.find(&format!("'{key}'")).map(|i| text[i + key.len() + 2..].trim_start());
    let value =
        |key: &str| after(key).and_then(|rest| rest.strip_prefix(':')).map(str::trim_start).ok_or_else(bad);
    let descr = value("descr")?;
    let descr = descr.strip_prefix('\'').and_then(|d| d.split('\'').next()).ok_or_else(bad)?.to_string();
    let fortran_order = value("fortran_order")?.starts_with("True");
    let shape = value("shape")?;
    let inside = shape.strip_prefix('(').and_then(|s| s.split(')').next()).ok_or_else(bad)?;
    let shape = inside
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    Ok(Header { descr, fortran_order, shape })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::data::test_dir;
    use candle_core::Device;

    /// A `.npy` file with the header given, and zeroed payload of `bytes`.
    fn write_raw(path: &Path, dict: &str, bytes: usize) {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(vec![0u8; bytes]);
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn headers_parse() {
        let h = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }").unwrap();
        assert_eq!(h, Header { descr: "<f4".into(), fortran_order: false, shape: vec![3, 4] });
        let h = parse_header("{'descr': '|u1', 'fortran_order': True, 'shape': (7,), }").unwrap();
        assert_eq!((h.fortran_order, h.shape), (true, vec![7]));
    }

    #[test]
    fn npy_round_trips_and_refuses_fortran_order_and_big_endian() {
        let dir = test_dir("npy");
        let path = dir.join("x.npy");
        let t = Tensor::new(&[[1i64, 2, 3], [4, 5, 6]], &Device::Cpu).unwrap();
        t.write_npy(&path).unwrap();
        let back = read_npy(&path).unwrap();
        assert_eq!(back.tensor.to_vec2::<i64>().unwrap(), [[1, 2, 3], [4, 5, 6]]);

        write_raw(&path, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24);
        let e = read_npy(&path).unwrap_err().to_string();
        assert!(
            e.contains("x.npy`: the array is in Fortran (column-major) order (dtype `<f4`, shape [2, 3])"),
            "{e}"
        );
        write_raw(&path, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", 16);
        let e = read_npy(&path).unwrap_err().to_string();
        assert!(e.contains("unsupported dtype `>f8`, shape [2]; expected little-endian"), "{e}");
        write_raw(
            &path,
            "{'descr': '<i8', 'fortran_order': False, 'shape': (100000000000, 100000000000), }",
            8,
        );
        let e = read_npy(&path).unwrap_err().to_string();
        assert!(e.ends_with("needs more than memory of values, the file holds 8"), "{e}");
        write_raw(&path, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", 40);
        let e = read_npy(&path).unwrap_err().to_string();
        assert!(e.ends_with("dtype `<i8`, shape [2, 3] needs 48 bytes of values, the file holds 40"), "{e}");
        std::fs::write(&path, b"a,b\n1,2\n").unwrap();
        let e = read_npy(&path).unwrap_err().to_string();
        assert!(e.ends_with("not a .npy file (it does not start with \\x93NUMPY)"), "{e}");
    }

    #[test]
    fn npz_arrays_are_found_by_name() {
        let dir = test_dir("npz");
        let path = dir.join("d.npz");
        let x = Tensor::new(&[[0.5f32, 1.5]], &Device::Cpu).unwrap();
        let y = Tensor::new(&[2u8], &Device::Cpu).unwrap();
        Tensor::write_npz(&[("x_train", &x), ("y_train", &y)], &path).unwrap();
        assert_eq!(read_npz(&path, "x_train").unwrap().tensor.to_vec2::<f32>().unwrap(), [[0.5, 1.5]]);
        let e = read_npz(&path, "x").unwrap_err().to_string();
        assert!(
            e.ends_with("d.npz`: no array `x`; the archive holds x_train [1, 2] f32, y_train [1] u8"),
            "{e}"
        );
        let e = read_npz(&dir.join("missing.npz"), "x").unwrap_err().to_string();
        assert!(e.starts_with("cannot read `") && e.contains("missing.npz"), "{e}");
    }
}
