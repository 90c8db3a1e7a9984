//! The members of a zip archive, as `np.savez` writes one: found through the central directory,
//! with every offset and size it declares checked against the file's length before it is used.
//! Members are stored (`np.savez`) or deflated (`np.savez_compressed`); a deflated member is
//! decompressed as it is read, never past the size the directory declares, and that size is
//! refused when deflate could not reach it from the member's compressed bytes.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};

/// A member as the central directory describes it.
#[derive(Debug)]
pub(super) struct Member {
    pub name: String,
    flags: u16,
    method: u16,
    compressed: u64,
    size: u64,
    local_header: u64,
}

const END: u32 = 0x0605_4b50;
const END64_LOCATOR: u32 = 0x0706_4b50;
const END64: u32 = 0x0606_4b50;
const ENTRY: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;
/// A 32-bit field that says "look in the zip64 record".
const MORE: u64 = 0xFFFF_FFFF;

/// The members of the archive `file`, `len` bytes long.
pub(super) fn members(file: &mut File, len: u64) -> Result<Vec<Member>, String> {
    // The end record: 22 bytes and a comment of at most 65,535, at the end of the file.
    let tail_len = len.min(22 + 65_535);
    let tail_at = len - tail_len;
    let tail = read_at(file, tail_at, tail_len, len)?;
    let at = (0..=tail.len().saturating_sub(22))
        .rev()
        .find(|i| u32_at(&tail, *i) == Some(END))
        .ok_or("it has no end-of-archive record")?;
    let end = &tail[at..];
    let field = |i, n| uint(end, i, n).ok_or("the end-of-archive record is cut short");
    let (mut entries, mut dir_size, mut dir_at) = (field(10, 2)?, field(12, 4)?, field(16, 4)?);
    if entries == 0xFFFF || dir_size == MORE || dir_at == MORE {
        // A zip64 archive: the locator just before the end record says where its record is.
        let locator_at = (tail_at + at as u64).checked_sub(20).ok_or("the zip64 locator is missing")?;
        let locator = read_at(file, locator_at, 20, len)?;
        let record_at = match u32_at(&locator, 0) {
            Some(END64_LOCATOR) => uint(&locator, 8, 8).ok_or("the zip64 locator is cut short")?,
            _ => return Err("the zip64 locator is missing".into()),
        };
        let record = read_at(file, record_at, 56, len)?;
        if u32_at(&record, 0) != Some(END64) {
            return Err("the zip64 end record is missing".into());
        }
        let field = |i| uint(&record, i, 8).ok_or("the zip64 end record is cut short");
        (entries, dir_size, dir_at) = (field(32)?, field(40)?, field(48)?);
    }
    let dir = read_at(file, dir_at, dir_size, len)?;
    let mut found = Vec::new();
    let mut pos = 0;
    while (found.len() as u64) < entries {
        let (member, next) = entry(&dir, pos).ok_or_else(|| {
            format!("its directory is cut short: {} of {entries} members described", found.len())
        })?;
        found.push(member);
        pos = next;
    }
    Ok(found)
}

/// The central directory entry at `pos`, and where the next one starts.
fn entry(dir: &[u8], pos: usize) -> Option<(Member, usize)> {
    let e = dir.get(pos..)?;
    if u32_at(e, 0)? != ENTRY {
        return None;
    }
    let (name_len, extra_len, comment_len) =
        (uint(e, 28, 2)? as usize, uint(e, 30, 2)? as usize, uint(e, 32, 2)? as usize);
    let name = e.get(46..46 + name_len)?;
    let extra = e.get(46 + name_len..46 + name_len + extra_len)?;
    let mut member = Member {
        name: String::from_utf8_lossy(name).into_owned(),
        flags: uint(e, 8, 2)? as u16,
        method: uint(e, 10, 2)? as u16,
        compressed: uint(e, 20, 4)?,
        size: uint(e, 24, 4)?,
        local_header: uint(e, 42, 4)?,
    };
    // Fields too large for 32 bits are in the zip64 extra field (id 1), in this order.
    let mut wide = zip64_extra(extra).unwrap_or_default().into_iter();
    for value in [&mut member.size, &mut member.compressed, &mut member.local_header] {
        if *value == MORE {
            *value = wide.next()?;
        }
    }
    Some((member, pos + 46 + name_len + extra_len + comment_len))
}

/// The 64-bit values of the zip64 extra field among `extra`'s (id, size, data) blocks.
fn zip64_extra(mut extra: &[u8]) -> Option<Vec<u64>> {
    while extra.len() >= 4 {
        let (id, size) = (uint(extra, 0, 2)?, uint(extra, 2, 2)? as usize);
        let data = extra.get(4..4 + size)?;
        if id == 1 {
            return Some(data.chunks_exact(8).filter_map(|c| uint(c, 0, 8)).collect());
        }
        extra = &extra[4 + size..];
    }
    None
}

/// The most bytes `compressed` bytes of deflate can expand to: a back-reference of 258 bytes
/// costs at least two bits, so no stream exceeds 1032 times its length (plus a block's slack).
pub(super) fn most_inflated(compressed: u64) -> u64 {
    compressed.saturating_mul(1032).saturating_add(1 << 10)
}

/// A reader of `member`'s bytes (decompressed), and how many there are.
pub(super) fn open<'f>(
    file: &'f mut File,
    member: &Member,
    len: u64,
) -> Result<(Box<dyn Read + 'f>, u64), String> {
    if member.flags & 1 != 0 {
        return Err("the member is encrypted".into());
    }
    let deflated = match member.method {
        0 => false,
        8 => true,
        m => {
            return Err(format!(
                "the member is compressed by method {m}; expected stored or deflated (`np.savez`, \
                 `np.savez_compressed`)"
            ))
        }
    };
    if deflated && member.size > most_inflated(member.compressed) {
        return Err(format!(
            "the member says it holds {} bytes; {} deflated bytes can hold at most {}",
            member.size,
            member.compressed,
            most_inflated(member.compressed)
        ));
    }
    if !deflated && member.compressed != member.size {
        return Err(format!(
            "the member is stored, but {} bytes are said to hold {}",
            member.compressed, member.size
        ));
    }
    let local = read_at(file, member.local_header, 30, len)?;
    let (Some(LOCAL), Some(name_len), Some(extra_len)) =
        (u32_at(&local, 0), uint(&local, 26, 2), uint(&local, 28, 2))
    else {
        return Err("the member's local header is missing".into());
    };
    let data_at = member.local_header + 30 + name_len + extra_len;
    if data_at.checked_add(member.compressed).is_none_or(|end| end > len) {
        return Err(format!(
            "the member says it holds {} bytes, past the end of the archive",
            member.compressed
        ));
    }
    file.seek(SeekFrom::Start(data_at)).map_err(|e| e.to_string())?;
    let stored = BufReader::new(file.take(member.compressed));
    Ok(match deflated {
        true => (Box::new(flate2::read::DeflateDecoder::new(stored).take(member.size)), member.size),
        false => (Box::new(stored), member.size),
    })
}

/// `n` bytes at `at`, which must lie within the `len` bytes of the file.
fn read_at(file: &mut File, at: u64, n: u64, len: u64) -> Result<Vec<u8>, String> {
    if at.checked_add(n).is_none_or(|end| end > len) {
        return Err(format!("it points at bytes {at}..{} of a file of {len}", at.saturating_add(n)));
    }
    let mut bytes = vec![0u8; n as usize];
    file.seek(SeekFrom::Start(at)).and_then(|_| file.read_exact(&mut bytes)).map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    uint(bytes, at, 4).map(|v| v as u32)
}

/// The little-endian unsigned integer of `n` bytes at `at`.
fn uint(bytes: &[u8], at: usize, n: usize) -> Option<u64> {
    let b = bytes.get(at..at + n)?;
    Some(b.iter().rev().fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte)))
}
