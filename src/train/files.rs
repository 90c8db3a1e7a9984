//! Writing a run's files: the folder made on demand, and each file replaced whole through a
//! temporary one beside it and a rename, so a reader (or a crash, or Ctrl-C) sees the old
//! file or the new one, never half of either.

use std::io;
use std::path::{Path, PathBuf};

/// Create the folder that will hold `path`, if it has one and it is missing.
pub fn ensure_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

/// Replace `path` with what `write` puts into the temporary file it is given.
pub fn replace(path: &Path, write: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    ensure_parent(path)?;
    let tmp = temporary(path);
    write(&tmp)?;
    std::fs::rename(&tmp, path)
}

/// The whole of the regular file at `path`. A device, a FIFO or a folder is refused before
/// anything is read: `/dev/zero` would never end, and a FIFO could block forever.
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    // Looked at before opening: opening a FIFO blocks until something writes to it.
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "it is not a regular file"));
    }
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `.name.tmp` beside `path`: hidden, and never mistaken for the file itself.
fn temporary(path: &Path) -> PathBuf {
    let name = path.file_name().map_or("file".into(), |n| n.to_string_lossy().to_string());
    path.with_file_name(format!(".{name}.tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_appears_whole_in_a_new_folder_with_no_temporary_left() {
        let dir = std::env::temp_dir().join(format!("wick-files-{}", std::process::id()));
        let path = dir.join("deep").join("curves.svg");
        replace(&path, |tmp| std::fs::write(tmp, "first")).unwrap();
        replace(&path, |tmp| std::fs::write(tmp, "second")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        assert!(!dir.join("deep").join(".curves.svg.tmp").exists());
        // A failed write leaves the old file in place.
        let failed = replace(&path, |_| Err(io::Error::other("disk full")));
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        std::fs::remove_dir_all(&dir).ok();
    }
}
