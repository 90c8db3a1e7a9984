//! The files wick reads and writes.
//!
//! Reading: only regular files, opened with their size known before a byte is read, so a
//! reader can check what a header declares against what the file holds, and a device
//! (`/dev/zero`), a named pipe or a folder given where a file is meant is refused instead of
//! read until memory runs out or waited on forever.
//!
//! Writing: each file made in a temporary folder beside it, flushed to the disk and renamed
//! over the old one, so a reader (or a crash, a kill, a power loss) sees the old file or the new
//! one, never half of either.

use std::collections::hash_map::RandomState;
use std::fs::{File, Metadata};
use std::hash::BuildHasher;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Open `path` for reading if it is a regular file (a symbolic link to one counts), with its
/// size. Anything else is refused with an error that says what it is.
pub fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    // Looked at before opening: opening a device can do things, and opening a named pipe
    // waits until something writes to it.
    refuse_unless_regular(&std::fs::metadata(path)?)?;
    // Not waiting, and looked at again, in case the path was swapped in between (the flag
    // changes nothing for a regular file).
    let file = File::options().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let metadata = file.metadata()?;
    refuse_unless_regular(&metadata)?;
    Ok((file, metadata.len()))
}

/// The bytes of the regular file at `path`: never more than the size it had when opened.
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let (file, size) = open_regular(path)?;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(usize::try_from(size).unwrap_or(usize::MAX)).map_err(|_| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("the file is {size} bytes, more than memory holds"),
        )
    })?;
    file.take(size).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn refuse_unless_regular(metadata: &Metadata) -> io::Result<()> {
    if metadata.is_file() {
        return Ok(());
    }
    let what = describe(metadata);
    Err(io::Error::new(io::ErrorKind::InvalidInput, format!("it is {what}, not a regular file")))
}

/// What a file that is not a regular one is, in words.
fn describe(metadata: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    if kind.is_dir() {
        "a folder"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// `a/./b/../c` -> `a/c`, on the path as written, without touching the disk. A `..` with no
/// folder before it to take away is kept (`../x`), except at the root (`/..` is `/`).
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            Component::ParentDir if out.has_root() => {}
            other => out.push(other),
        }
    }
    out
}

/// Create the folder that will hold `path`, if it has one and it is missing.
pub fn ensure_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

/// [`replace_file`], making the folders that hold `path` first if they are missing (a run's).
pub fn replace(path: &Path, write: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    ensure_parent(path)?;
    replace_file(path, write)
}

/// [`replace`] without the flushes to the disk: still whole or absent after a crash or a kill,
/// but a power loss may lose it. For what a run rewrites every epoch and can remake (the
/// weights beside a checkpoint that holds them too, the curves): on a disk where a flush
/// takes 10-15 ms it would otherwise cost more than a small model's epoch.
pub fn replace_unsynced(path: &Path, write: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    ensure_parent(path)?;
    write_replacing(path, write, false)
}

/// Replace `path`, in a folder that must exist, with the file `write` makes at the path it is
/// given. (A missing folder in a path a user typed is likelier a typo than a wish.)
///
/// `write` works in a fresh folder `.NAME.tmpXXXXXX` beside `path` (whatever temporaries it
/// makes itself stay in there, and [`clean_leftovers`] finds them after a kill). Its file is
/// flushed to the disk, renamed over `path`, and the folder holding `path` is flushed too, so
/// after a power loss `path` is the old file or the new one. The new file keeps the mode of
/// the one it replaces, or gets the one the umask gives a new file. Only a regular file is
/// replaced: a symbolic link, a device or a named pipe at `path` is an error, not followed.
pub fn replace_file(path: &Path, write: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    write_replacing(path, write, true)
}

/// Tensors to a safetensors file at `path` by [`replace_file`] (so the old file or the whole new
/// one, never a part), each moved to the CPU first. The one way wick writes weights and outputs.
#[cfg(feature = "lower")]
pub fn save_safetensors<'a>(
    path: &Path,
    tensors: impl IntoIterator<Item = (&'a String, &'a candle_core::Tensor)>,
) -> io::Result<()> {
    let on_cpu = tensors
        .into_iter()
        .map(|(name, t)| Ok((name.clone(), t.to_device(&candle_core::Device::Cpu)?)))
        .collect::<candle_core::Result<std::collections::HashMap<_, _>>>()
        .map_err(io::Error::other)?;
    replace_file(path, |tmp| candle_core::safetensors::save(&on_cpu, tmp).map_err(io::Error::other))
}

fn write_replacing(path: &Path, write: impl FnOnce(&Path) -> io::Result<()>, sync: bool) -> io::Result<()> {
    let existing = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => Some(m.permissions()),
        Ok(m) => {
            let what = describe(&m);
            let message = format!("it is {what}; wick replaces only regular files");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let folder = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map_or("file".into(), |n| n.to_string_lossy().to_string());
    let staging = staging_folder(folder, &name)?;
    let moved = (|| {
        let written = staging.join(&name);
        write(&written)?;
        if sync {
            File::open(&written)?.sync_data()?;
        }
        pause_for_tests();
        // A folder is made with 0777 less the umask; a file gets that less execute (0666).
        let permissions = match existing {
            Some(p) => p,
            None => {
                use std::os::unix::fs::PermissionsExt;
                let folder_mode = std::fs::metadata(&staging)?.permissions().mode();
                std::fs::Permissions::from_mode(folder_mode & 0o666)
            }
        };
        std::fs::set_permissions(&written, permissions)?;
        std::fs::rename(&written, path)
    })();
    // A staging folder that cannot be removed is left for `clean_leftovers`: the write is done.
    let _ = std::fs::remove_dir_all(&staging);
    moved?;
    if sync {
        File::open(folder)?.sync_all()?;
    }
    Ok(())
}

/// The fault tests' hook: with `WICK_TEST_PAUSE_BEFORE_RENAME_MS` set, every replacement waits
/// that long between writing its file and renaming it, so a test can kill the process there.
fn pause_for_tests() {
    let pause = std::env::var("WICK_TEST_PAUSE_BEFORE_RENAME_MS").ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = pause {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// Make `.NAME.tmpXXXXXX` in `folder`, a name no other writer holds.
fn staging_folder(folder: &Path, name: &str) -> io::Result<PathBuf> {
    let mut last = None;
    for attempt in 0..16u32 {
        // Each `RandomState` has its own random keys: a fresh name each call, in each process.
        let bits = RandomState::new().hash_one((std::process::id(), attempt));
        let dir = folder.join(format!(".{name}.tmp{}", suffix(bits)));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

const SUFFIX_CHARS: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const SUFFIX_LEN: usize = 6;

fn suffix(mut bits: u64) -> String {
    (0..SUFFIX_LEN)
        .map(|_| {
            let c = SUFFIX_CHARS[(bits % 36) as usize];
            bits /= 36;
            c as char
        })
        .collect()
}

/// Remove what writes cut short left in `dir`: the temporaries of [`replace`]
/// (`.NAME.tmpXXXXXX`), and those of earlier versions of wick (`.NAME.tmp`, and the safetensors
/// crate's own `.tmpXXXXXX`). Call it only while nothing else writes in `dir`, as at the start
/// of a run. Returns how many were removed.
pub fn clean_leftovers(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !is_leftover(&entry.file_name().to_string_lossy()) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
        removed += 1;
    }
    Ok(removed)
}

fn is_leftover(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else { return false };
    let random = |s: &str| s.len() == SUFFIX_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric());
    match rest.rsplit_once(".tmp") {
        Some((_, tail)) if tail.is_empty() || random(tail) => true,
        _ => rest.strip_prefix("tmp").is_some_and(random),
    }
}

#[cfg(test)]
mod tests;
