//! numpy's `.npy` files and `.npz` archives, read here rather than by candle, whose readers size
//! their buffers by what a header declares: every size a header declares is checked against
//! the bytes the file holds before anything is allocated. What candle cannot hold (Fortran
//! order, big-endian, odd dtypes) is refused with the file, its dtype and its shape named.

use std::io::{BufReader, Read};
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::convert::{count, dtype_name, Named};
use super::{zip, DataError};
use crate::train::files;

/// What a `.npy` header says.
#[derive(Debug, PartialEq)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// One `.npy` file.
pub(super) fn read_npy(path: &Path) -> Result<Named, DataError> {
    let shown = path.display().to_string();
    let (file, size) =
        files::open_regular(path).map_err(|source| DataError::Io { path: shown.clone(), source })?;
    let tensor = read_array(&mut BufReader::new(file), size)
        .map_err(|message| DataError::Array { what: format!("`{shown}`"), message })?;
    Ok(Named::new(format!("`{shown}`"), tensor))
}

/// The array `name` of a `.npz` archive.
pub(super) fn read_npz(path: &Path, name: &str) -> Result<Named, DataError> {
    let shown = path.display().to_string();
    let (mut file, size) =
        files::open_regular(path).map_err(|source| DataError::Io { path: shown.clone(), source })?;
    let file_error = |message: String| DataError::Array { what: format!("`{shown}`"), message };
    let members =
        zip::members(&mut file, size).map_err(|e| file_error(format!("not a .npz archive: {e}")))?;
    let array_name = |m: &zip::Member| m.name.strip_suffix(".npy").unwrap_or(&m.name).to_string();
    let Some(member) = members.iter().find(|m| array_name(m) == name) else {
        let mut held: Vec<String> = members
            .iter()
            .map(|m| {
                let header = zip::open(&mut file, m, size).and_then(|(mut r, len)| read_header(&mut r, len));
                match header.ok().and_then(|(h, _)| element(&h.descr).map(|(d, _)| (h.shape, d))) {
                    Some((shape, dtype)) => format!("{} {shape:?} {}", array_name(m), dtype_name(dtype)),
                    None => array_name(m),
                }
            })
            .collect();
        held.sort();
        return Err(file_error(format!("no array `{name}`; the archive holds {}", held.join(", "))));
    };
    let what = format!("`{shown}` array `{name}`");
    let tensor = zip::open(&mut file, member, size)
        .and_then(|(mut r, len)| read_array(&mut r, len))
        .map_err(|message| DataError::Array { what: what.clone(), message })?;
    Ok(Named::new(what, tensor))
}

/// An array in `.npy` form from `r`, which holds `len` bytes.
fn read_array(r: &mut impl Read, len: u64) -> Result<Tensor, String> {
    let (header, header_len) = read_header(r, len)?;
    let found = format!("dtype `{}`, shape {:?}", header.descr, header.shape);
    if header.fortran_order {
        return Err(format!(
            "the array is in Fortran (column-major) order ({found}); expected C order: save \
             `np.ascontiguousarray(a)` instead"
        ));
    }
    let Some((dtype, item)) = element(&header.descr) else {
        return Err(format!(
            "unsupported {found}; expected little-endian f32, f64, f16, i64, i32, i16, u8 or u32"
        ));
    };
    let payload = len - header_len;
    let expected = count(&header.shape).and_then(|n| n.checked_mul(item));
    if expected.map(|n| n as u64) != Some(payload) {
        let expected = expected.map_or("more than memory".to_string(), |n| format!("{n} bytes"));
        return Err(format!("{found} needs {expected} of values, the file holds {payload}"));
    }
    let mut values = Vec::new();
    values.try_reserve_exact(payload as usize).map_err(|_| format!("{found} needs more than memory"))?;
    r.take(payload).read_to_end(&mut values).map_err(|e| e.to_string())?;
    if values.len() as u64 != payload {
        return Err(format!("{found}: the values are cut short ({} of {payload} bytes)", values.len()));
    }
    Tensor::from_raw_buffer(&values, dtype, &header.shape, &Device::Cpu).map_err(|e| e.to_string())
}

/// The candle dtype of a numpy `descr` and its size in bytes, if candle holds it.
fn element(descr: &str) -> Option<(DType, usize)> {
    Some(match descr.replace('=', "<").as_str() {
        "<f4" => (DType::F32, 4),
        "<f8" => (DType::F64, 8),
        "<f2" => (DType::F16, 2),
        "<i8" => (DType::I64, 8),
        "<i4" => (DType::I32, 4),
        "<i2" => (DType::I16, 2),
        "|u1" | "<u1" => (DType::U8, 1),
        "<u4" => (DType::U32, 4),
        _ => return None,
    })
}

/// Magic, version, header length, then the header (a Python dict literal) from `r`, which
/// holds `len` bytes; with the bytes the header took.
fn read_header(r: &mut impl Read, len: u64) -> Result<(Header, u64), String> {
    let short = |_| format!("too short for a .npy file ({len} bytes)");
    let mut fixed = [0u8; 8];
    r.read_exact(&mut fixed).map_err(short)?;
    if &fixed[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (it does not start with \\x93NUMPY)".into());
    }
    let declared = match fixed[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(short)?;
            u64::from(u16::from_le_bytes(b))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(short)?;
            u64::from(u32::from_le_bytes(b))
        }
        v => return Err(format!("unknown .npy format version {v}")),
    };
    let used = if fixed[6] == 1 { 10 } else { 12 } + declared;
    if used > len {
        return Err(format!(
            "the header says it is {declared} bytes long; the file holds {len} bytes in all"
        ));
    }
    let mut text = vec![0u8; declared as usize];
    r.read_exact(&mut text).map_err(|_| "the header is cut short".to_string())?;
    Ok((parse_header(&String::from_utf8_lossy(&text))?, used))
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
