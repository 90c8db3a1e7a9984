use super::*;
#[cfg(feature = "lower")]
use std::os::unix::fs::PermissionsExt;

/// A fresh folder under the system's temporary one.
fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wick-files-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(feature = "lower")]
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_replaced_file_appears_whole_in_a_new_folder_with_no_temporary_left() {
    let dir = fresh("replace");
    let path = dir.join("deep").join("curves.svg");
    replace(&path, |tmp| std::fs::write(tmp, "first")).unwrap();
    replace(&path, |tmp| std::fs::write(tmp, "second")).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
    let names: Vec<_> =
        std::fs::read_dir(dir.join("deep")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["curves.svg"]);
    // A failed write leaves the old file in place, and no temporary.
    let failed = replace(&path, |_| Err(io::Error::other("disk full")));
    assert!(failed.is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
    assert_eq!(std::fs::read_dir(dir.join("deep")).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

// Writes through the safetensors crate, which comes with the backend half.
#[cfg(feature = "lower")]
#[test]
fn a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_own() {
    let dir = fresh("mode");
    let plain = dir.join("plain");
    std::fs::write(&plain, "made as any program makes a file").unwrap();
    // The safetensors crate writes through a temporary file of mode 0600 and renames it.
    let path = dir.join("w.safetensors");
    let tensors = std::collections::HashMap::from([(
        "w".to_string(),
        candle_core::Tensor::new(&[1f32], &candle_core::Device::Cpu).unwrap(),
    )]);
    let save =
        |p: &Path| replace(p, |tmp| candle_core::safetensors::save(&tensors, tmp).map_err(io::Error::other));
    save(&path).unwrap();
    assert_eq!(mode(&path), mode(&plain));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    save(&path).unwrap();
    assert_eq!(mode(&path), 0o640);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn only_a_regular_file_is_replaced_and_a_link_is_not_followed() {
    let dir = fresh("targets");
    let victim = dir.join("victim");
    std::fs::write(&victim, "keep me").unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let e = replace(&link, |tmp| std::fs::write(tmp, "new")).unwrap_err();
    assert_eq!(e.to_string(), "it is a symbolic link; wick replaces only regular files");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    let e = replace(Path::new("/dev/null"), |tmp| std::fs::write(tmp, "new")).unwrap_err();
    assert_eq!(e.to_string(), "it is a character device; wick replaces only regular files");
    let e = replace(&dir, |tmp| std::fs::write(tmp, "new")).unwrap_err();
    assert_eq!(e.to_string(), "it is a folder; wick replaces only regular files");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn temporaries_have_fresh_names_and_leftovers_are_cleaned() {
    let dir = fresh("leftovers");
    let path = dir.join("checkpoint.safetensors");
    let (mut first, mut second) = (PathBuf::new(), PathBuf::new());
    replace(&path, |tmp| {
        first = tmp.parent().unwrap().to_path_buf();
        std::fs::write(tmp, "a")
    })
    .unwrap();
    replace(&path, |tmp| {
        second = tmp.parent().unwrap().to_path_buf();
        std::fs::write(tmp, "b")
    })
    .unwrap();
    assert_ne!(first, second);
    let name = first.file_name().unwrap().to_string_lossy().to_string();
    assert!(is_leftover(&name) && name.starts_with(".checkpoint.safetensors.tmp"), "{name}");

    // What a kill mid-write leaves: a staging folder, and older versions' temporaries.
    std::fs::create_dir(&first).unwrap();
    std::fs::write(first.join("checkpoint.safetensors"), "half").unwrap();
    for old in [".checkpoint.safetensors.tmp", ".tmpAb3xY9"] {
        std::fs::write(dir.join(old), "half").unwrap();
    }
    for kept in ["metrics.csv", ".tmp", "notes.tmp", ".x.tmpshort"] {
        std::fs::write(dir.join(kept), "mine").unwrap();
    }
    assert_eq!(clean_leftovers(&dir).unwrap(), 3);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names, [".tmp", ".x.tmpshort", "checkpoint.safetensors", "metrics.csv", "notes.tmp"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn reading_refuses_what_is_not_a_regular_file() {
    let dir = fresh("read");
    let zero = dir.join("zero.npy");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    assert_eq!(read_regular(&zero).unwrap_err().to_string(), "it is a character device, not a regular file");
    assert_eq!(read_regular(&dir).unwrap_err().to_string(), "it is a folder, not a regular file");
    let fifo = dir.join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    assert_eq!(read_regular(&fifo).unwrap_err().to_string(), "it is a named pipe (FIFO), not a regular file");
    let file = dir.join("f");
    std::fs::write(&file, "four").unwrap();
    assert_eq!(open_regular(&file).unwrap().1, 4);
    assert_eq!(read_regular(&file).unwrap(), b"four");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn paths_normalize_as_written() {
    let n = |p: &str| normalize(Path::new(p)).to_string_lossy().to_string();
    assert_eq!(n("a/./b/../c"), "a/c");
    assert_eq!(n("../../x"), "../../x");
    assert_eq!(n("a/../../x"), "../x");
    assert_eq!(n("/../etc"), "/etc");
    assert_eq!(n("/a/b/../../.."), "/");
}
