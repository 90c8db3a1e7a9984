//! Files for the reliability suites, good and broken: `.npy`, `.npz`, safetensors, IDX and CSV
//! made byte by byte (so a header can lie), and the things that are not regular files.

use std::path::{Path, PathBuf};

/// A folder of its own under the system's temporary one, open to every user (a test may run
/// wick as `nobody`), removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("wick-reliability-{}-{name}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// `name` as each thing that is not a readable regular file: empty, a named pipe nothing
    /// writes to, a link to `/dev/zero`, a folder, and `valid` without read permission. With
    /// each, whether it must be read by a user other than root (who reads anything).
    pub fn specials(&self, name: &str, valid: &[u8]) -> Vec<(PathBuf, bool)> {
        use std::os::unix::fs::PermissionsExt;
        let empty = self.write(&format!("empty-{name}"), b"");
        let fifo = self.path(&format!("fifo-{name}"));
        mkfifo(&fifo);
        let zero = self.path(&format!("zero-{name}"));
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let folder = self.path(&format!("folder-{name}"));
        std::fs::create_dir(&folder).unwrap();
        let locked = self.write(&format!("locked-{name}"), valid);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        vec![(empty, false), (fifo, false), (zero, false), (folder, false), (locked, true)]
    }

    /// Each of `broken` written as `NAME-name`, then [`specials`](Self::specials).
    pub fn all(&self, name: &str, valid: &[u8], broken: Vec<(&str, Vec<u8>)>) -> Vec<(PathBuf, bool)> {
        let mut files: Vec<(PathBuf, bool)> = broken
            .into_iter()
            .map(|(what, bytes)| (self.write(&format!("{what}-{name}"), &bytes), false))
            .collect();
        files.extend(self.specials(name, valid));
        files
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A named pipe at `path`.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo {}", path.display());
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The user a root test runs wick as, to meet a permission it would otherwise override.
pub const NOBODY: u32 = 65534;

fn display(path: &Path) -> String {
    path.display().to_string()
}

pub mod npy {
    /// A version-1 `.npy` file: `descr`, `shape` (as Python writes it) and `payload` zero bytes.
    pub fn file(descr: &str, shape: &str, payload: usize) -> Vec<u8> {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        with_header(&dict, 64, payload)
    }

    /// `dict` padded (and a newline) so the header ends on a multiple of `align` bytes.
    fn with_header(dict: &str, align: usize, payload: usize) -> Vec<u8> {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(align) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(vec![0u8; payload]);
        out
    }

    /// 20 bytes whose header length says 4 GiB.
    pub fn header_4gib() -> Vec<u8> {
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend(u32::MAX.to_le_bytes());
        bytes.extend([0u8; 8]);
        bytes
    }

    /// Damaged `.npy` files, each with what is wrong with it.
    pub fn broken() -> Vec<(&'static str, Vec<u8>)> {
        let claims =
            with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 4), }", 128, 0);
        assert_eq!(claims.len(), 128);
        vec![
            ("truncated", file("<f4", "(2, 4)", 16)),
            ("header-4gib", header_4gib()),
            ("claims-1e9x4", claims),
            ("claims-overflow", file("<f4", "(100000000000, 100000000000, 100000000000)", 8)),
            ("bad-magic", b"NUMPY? no, a text file\n".to_vec()),
            ("complex-dtype", file("<c8", "(2, 4)", 64)),
            ("object-dtype", file("|O", "(2, 4)", 64)),
            ("big-endian", file(">f4", "(2, 4)", 32)),
            ("bad-header", file("<f4", "(2, x)", 32)),
            ("version-9", b"\x93NUMPY\x09\x00\x10\x00{}".to_vec()),
        ]
    }
}

pub mod safetensors {
    /// A safetensors file of zeroed tensors (name, dtype, shape).
    pub fn file(tensors: &[(&str, &str, &[usize])]) -> Vec<u8> {
        let mut at = 0;
        let entries: Vec<String> = tensors
            .iter()
            .map(|(name, dtype, shape)| {
                let size = shape.iter().product::<usize>() * if *dtype == "I64" { 8 } else { 4 };
                let entry = format!(
                    r#""{name}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{at},{}]}}"#,
                    at + size
                );
                at += size;
                entry
            })
            .collect();
        let mut bytes = raw(&format!("{{{}}}", entries.join(",")));
        bytes.extend(vec![0u8; at]);
        bytes
    }

    /// The length prefix and `header`, nothing after.
    fn raw(header: &str) -> Vec<u8> {
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes
    }

    pub fn broken() -> Vec<(&'static str, Vec<u8>)> {
        let good = file(&[("x", "F32", &[2, 4])]);
        let with_data = |header: &str, data: usize| {
            let mut b = raw(header);
            b.extend(vec![0u8; data]);
            b
        };
        let mut header_1tib = (1u64 << 40).to_le_bytes().to_vec();
        header_1tib.extend(b"{}");
        vec![
            ("truncated", good[..good.len() / 2].to_vec()),
            ("header-1tib", header_1tib),
            (
                "claims-huge",
                with_data(r#"{"x":{"dtype":"F32","shape":[1000000000,100000],"data_offsets":[0,32]}}"#, 32),
            ),
            (
                "offsets-past-end",
                with_data(r#"{"x":{"dtype":"F32","shape":[2,4],"data_offsets":[0,1099511627776]}}"#, 32),
            ),
            ("not-json", with_data("hello", 0)),
            ("bad-magic", b"just some text, not tensors\n".to_vec()),
            ("unknown-dtype", with_data(r#"{"x":{"dtype":"Q7","shape":[2,4],"data_offsets":[0,32]}}"#, 32)),
        ]
    }
}

pub mod npz {
    /// A zip archive of `members` (name, bytes, method), stored as `np.savez` writes them (a
    /// method other than 0 only labels the member; the bytes are as given).
    pub fn archive(members: &[(&str, Vec<u8>, u16)]) -> Vec<u8> {
        let (mut out, mut dir) = (Vec::new(), Vec::new());
        for (name, bytes, method) in members {
            let offset = out.len() as u32;
            let sizes = [bytes.len() as u32, bytes.len() as u32];
            out.extend(0x0403_4b50u32.to_le_bytes());
            out.extend([20u8, 0, 0, 0]);
            out.extend(method.to_le_bytes());
            out.extend([0u8; 8]); // time, date, crc
            sizes.iter().for_each(|s| out.extend(s.to_le_bytes()));
            out.extend((name.len() as u16).to_le_bytes());
            out.extend(0u16.to_le_bytes());
            out.extend(name.as_bytes());
            out.extend(bytes);
            dir.extend(0x0201_4b50u32.to_le_bytes());
            dir.extend([20u8, 0, 20, 0, 0, 0]);
            dir.extend(method.to_le_bytes());
            dir.extend([0u8; 8]);
            sizes.iter().for_each(|s| dir.extend(s.to_le_bytes()));
            dir.extend((name.len() as u16).to_le_bytes());
            dir.extend([0u8; 12]); // extra, comment, disk, attributes
            dir.extend(offset.to_le_bytes());
            dir.extend(name.as_bytes());
        }
        let dir_at = out.len() as u32;
        out.extend(&dir);
        out.extend(end_record(members.len() as u16, dir.len() as u32, dir_at));
        out
    }

    fn end_record(entries: u16, dir_size: u32, dir_at: u32) -> Vec<u8> {
        let mut end = 0x0605_4b50u32.to_le_bytes().to_vec();
        end.extend([0u8; 4]);
        end.extend(entries.to_le_bytes());
        end.extend(entries.to_le_bytes());
        end.extend(dir_size.to_le_bytes());
        end.extend(dir_at.to_le_bytes());
        end.extend(0u16.to_le_bytes());
        end
    }

    pub fn valid() -> Vec<u8> {
        archive(&[
            ("x.npy", super::npy::file("<f4", "(8, 4)", 128), 0),
            ("y.npy", super::npy::file("<i8", "(8,)", 64), 0),
        ])
    }

    pub fn broken() -> Vec<(&'static str, Vec<u8>)> {
        let y = super::npy::file("<i8", "(8,)", 64);
        let with_x = |x: Vec<u8>, method: u16| archive(&[("x.npy", x, method), ("y.npy", y.clone(), 0)]);
        let claims = super::npy::file("<f4", "(100000000000, 100000)", 0);
        let good = valid();
        let end_at = good.len() - 22;
        let mut dir_past_end = good.clone();
        dir_past_end[end_at + 16..end_at + 20].copy_from_slice(&u32::MAX.wrapping_sub(7).to_le_bytes());
        let mut many_entries = good.clone();
        many_entries[end_at + 8..end_at + 12].copy_from_slice(&[0x60, 0xEA, 0x60, 0xEA]);
        let mut member_past_end = good.clone();
        // The first directory entry's sizes (at 20 and 24 of it) say 2 GiB.
        let dir_at = u32::from_le_bytes(good[end_at + 16..end_at + 20].try_into().unwrap()) as usize;
        for field in [20, 24] {
            member_past_end[dir_at + field..dir_at + field + 4].copy_from_slice(&(1u32 << 31).to_le_bytes());
        }
        vec![
            ("claims-1e11x1e5", with_x(claims, 0)),
            ("member-header-4gib", with_x(super::npy::header_4gib(), 0)),
            ("deflated", with_x(super::npy::file("<f4", "(8, 4)", 128), 8)),
            ("dir-past-end", dir_past_end),
            ("60000-entries", many_entries),
            ("member-past-end", member_past_end),
            ("truncated", good[..good.len() / 2].to_vec()),
            ("bad-magic", b"PK? no, a text file\n".to_vec()),
        ]
    }
}

pub mod idx {
    /// An IDX file of u8 values: `dims`, then `payload` zero bytes.
    pub fn file(dims: &[u32], payload: usize) -> Vec<u8> {
        with_code(0x08, dims, payload)
    }

    fn with_code(code: u8, dims: &[u32], payload: usize) -> Vec<u8> {
        let mut out = vec![0, 0, code, dims.len() as u8];
        dims.iter().for_each(|d| out.extend(d.to_be_bytes()));
        out.extend(vec![0u8; payload]);
        out
    }

    pub fn broken() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("claims-1e9x28x28", file(&[1_000_000_000, 28, 28], 10)),
            ("claims-overflow", file(&[u32::MAX; 8], 10)),
            ("header-cut", vec![0, 0, 8, 3, 0, 0]),
            ("values-cut", file(&[8, 2, 2], 20)),
            ("gzip", vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0]),
            ("f32-values", with_code(0x0D, &[8, 2, 2], 128)),
            ("bad-magic", b"P5\n2 2\n255\n".to_vec()),
        ]
    }
}

pub mod csv {
    pub fn valid() -> Vec<u8> {
        b"a,b,c,d,label\n1,2,3,4,0\n5,6,7,8,1\n1,2,3,4,0\n5,6,7,8,1\n1,2,3,4,0\n".to_vec()
    }

    pub fn broken() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("binary", vec![0x7f, b'E', b'L', b'F', 0xff, 0xfe, 0, 1, 2, 3]),
            ("ragged", b"a,b,c,d,label\n1,2,3,4,0\n1,2\n".to_vec()),
            ("not-numbers", b"a,b,c,d,label\n1,2,x,4,0\n".to_vec()),
            ("no-target", b"a,b,c,d\n1,2,3,4\n".to_vec()),
            ("bad-label", b"a,b,c,d,label\n1,2,3,4,-1.5\n".to_vec()),
        ]
    }
}

/// Config lines (`data:` and more) that read `file` with `reader` (`npy`, `npz`, `idx`, `csv`,
/// `safetensors`), its companions from `dir`.
pub fn data_config(reader: &str, file: &Path, dir: &Path) -> String {
    let (f, at) = (display(file), |name: &str| display(&dir.join(name)));
    match reader {
        "npy" => format!("data: {{npy: {{features: '{f}', target: '{}'}}}}", at("y.npy")),
        "npz" => format!("data: {{npz: '{f}', features: x, target: y}}"),
        "idx" => format!("data: {{idx: {{images: '{f}', labels: '{}'}}}}", at("labels-idx1-ubyte")),
        "csv" => format!("data: {{csv: '{f}', target: label}}"),
        _ => format!("data: {{safetensors: '{f}', features: x, target: y}}"),
    }
}
