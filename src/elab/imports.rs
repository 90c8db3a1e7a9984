//! Loading a spec and the files it `use`s, depth first, with import-cycle detection.
//!
//! A spec may import any file it can read, so diagnostics must not become a way to print a
//! file that is not a spec (`use "/etc/shadow"`). A file counts as a spec when its name ends
//! in `.wick`, `.yaml` or `.yml`, or when it is UTF-8 text that parses as a spec. Any other
//! file is reported as "not a spec" with its name and the place it failed (line and column),
//! and no diagnostic ever quotes its bytes. Files are read only when regular and at most
//! [`MAX_FILE_BYTES`] long.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics};
use crate::front::ast::{Item, Module};
use crate::front::span::{SourceMap, Span};

/// Largest spec file read, so `use "/dev/zero"` cannot exhaust memory.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Where `use` finds files.
#[derive(Debug, Clone)]
pub enum Files {
    Disk,
    /// In-memory files by name, for tests and fuzzing: nothing is read from disk.
    Memory(BTreeMap<String, String>),
}

/// A root file and everything it imports, parsed; the root's module comes first.
#[derive(Debug, Default)]
pub struct Loaded {
    pub sources: SourceMap,
    pub modules: Vec<Module>,
    pub diags: Diagnostics,
}

/// Load `root` and its imports. An unreadable root is an I/O error (the caller's, not the spec's).
pub fn load(root: &str, files: &Files) -> std::io::Result<Loaded> {
    let bytes = read(Path::new(root), files)?;
    let mut loaded = Loaded::default();
    let key = canonical(Path::new(root), files);
    let mut stack = vec![key.clone()];
    parse_and_follow(root, key, bytes, None, files, &mut stack, &mut loaded);
    Ok(loaded)
}

/// Whether a file's name says it is a spec.
fn spec_name(name: &str) -> bool {
    [".wick", ".yaml", ".yml"].iter().any(|ext| name.ends_with(ext))
}

/// Parse one file (`imported_at`: the `use` that named it, none for the root) and follow its
/// imports.
fn parse_and_follow(
    name: &str,
    key: PathBuf,
    bytes: Vec<u8>,
    imported_at: Option<Span>,
    files: &Files,
    stack: &mut Vec<PathBuf>,
    loaded: &mut Loaded,
) {
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            // Keep the text before the bad byte, so its line and column can be named.
            let bad = e.utf8_error().valid_up_to();
            let valid = String::from_utf8(e.into_bytes()[..bad].to_vec()).unwrap_or_default();
            let file = loaded.sources.add(name, Some(key), valid);
            let at = Span::new(file, bad, bad);
            let d = if spec_name(name) {
                let d = Diagnostic::error("E0114", format!("`{name}` is not UTF-8 text"))
                    .at(at, "this byte is not UTF-8")
                    .help("save the file as UTF-8");
                match imported_at {
                    Some(span) => d.also(span, "imported here"),
                    None => d,
                }
            } else {
                loaded.sources.hide(file);
                not_a_spec(name, "it is not UTF-8 text", at, imported_at, &loaded.sources)
            };
            loaded.diags.push(d);
            return;
        }
    };
    let file = loaded.sources.add(name, Some(key), text);
    let parsed = crate::front::parse(name, &loaded.sources.get(file).text, file);
    let module = match parsed {
        Ok(m) => m,
        Err(d) if spec_name(name) => {
            loaded.diags.push(d);
            return;
        }
        Err(d) => {
            loaded.sources.hide(file);
            let at = d.primary.map_or(Span::new(file, 0, 0), |l| l.span);
            let why = "it does not parse as a spec and its name does not end in .wick, .yaml or .yml";
            loaded.diags.push(not_a_spec(name, why, at, imported_at, &loaded.sources));
            return;
        }
    };
    let uses: Vec<(String, Span)> = module
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Use { path, span } => Some((path.clone(), *span)),
            _ => None,
        })
        .collect();
    loaded.modules.push(module);
    let dir = Path::new(name).parent().map(Path::to_path_buf).unwrap_or_default();
    for (rel, span) in uses {
        let path = if is_std(&rel) { PathBuf::from(&rel) } else { dir.join(&rel) };
        let shown = path.to_string_lossy().to_string();
        let key = canonical(&path, files);
        if let Some(pos) = stack.iter().position(|p| *p == key) {
            let cycle: Vec<String> = stack[pos..]
                .iter()
                .chain(std::iter::once(&key))
                .map(|p| p.to_string_lossy().to_string())
                .collect();
            loaded.diags.push(
                Diagnostic::error("E0112", format!("import cycle: {}", cycle.join(" -> ")))
                    .at(span, "this import closes the cycle")
                    .help("move the shared blocks into a file that both can import"),
            );
            continue;
        }
        if loaded.sources.find_path(&key).is_some() {
            continue;
        }
        match read(&path, files) {
            Ok(bytes) => {
                stack.push(key.clone());
                parse_and_follow(&shown, key, bytes, Some(span), files, stack, loaded);
                stack.pop();
            }
            Err(e) => loaded.diags.push(
                Diagnostic::error("E0111", format!("cannot read `{shown}`: {e}"))
                    .at(span, "imported here")
                    .help("paths in `use` are relative to the importing file; `use \"std/NAME.wick\"` names a file of the bundled block library"),
            ),
        }
    }
}

/// A file that is not a spec: pointed at where it is imported (or, for the root, where it
/// failed), naming the place of the failure but none of its bytes.
fn not_a_spec(
    name: &str,
    why: &str,
    failed: Span,
    imported_at: Option<Span>,
    sources: &SourceMap,
) -> Diagnostic {
    let message = format!("`{name}` is not a spec: {why}");
    let place = format!("the first problem is at {}", sources.location(failed));
    match imported_at {
        Some(span) => Diagnostic::error("E0114", message)
            .at(span, "imported here")
            .note(place)
            .help("`use` imports spec files (.wick, .yaml, .yml); a file that is not one is not shown"),
        None => Diagnostic::error("E0114", message)
            .at(failed, "here")
            .help("wick reads spec files (.wick, .yaml, .yml); a file that is not one is not shown"),
    }
}

/// `use "std/…"` names a file of the bundled block library, wherever the importer lives.
fn is_std(rel: &str) -> bool {
    rel.starts_with("std/")
}

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/std_files.rs"));
}

/// The bundled library's files: (file name, contents).
pub(super) fn std_files() -> &'static [(&'static str, &'static str)] {
    bundled::STD_FILES
}

fn std_file(path: &Path) -> Option<&'static str> {
    let name = path.strip_prefix("std").ok()?.to_str()?;
    bundled::STD_FILES.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

fn canonical(path: &Path, files: &Files) -> PathBuf {
    if path.starts_with("std") && std_file(path).is_some() {
        return path.to_path_buf();
    }
    match files {
        Files::Disk => path.canonicalize().unwrap_or_else(|_| crate::train::files::normalize(path)),
        Files::Memory(_) => crate::train::files::normalize(path),
    }
}

fn read(path: &Path, files: &Files) -> std::io::Result<Vec<u8>> {
    if path.starts_with("std") {
        if let Some(text) = std_file(path) {
            return Ok(text.as_bytes().to_vec());
        }
    }
    match files {
        Files::Memory(map) => map
            .get(&crate::train::files::normalize(path).to_string_lossy().to_string())
            .map(|text| text.as_bytes().to_vec())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")),
        Files::Disk => read_regular(path),
    }
}

/// A regular file of at most [`MAX_FILE_BYTES`] (a FIFO would block, a device may never end).
fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    let too_large = |len: u64| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the file is {len} bytes; a spec may be at most {} MiB", MAX_FILE_BYTES >> 20),
        )
    };
    let (file, size) = crate::train::files::open_regular(path)?;
    if size > MAX_FILE_BYTES {
        return Err(too_large(size));
    }
    let mut bytes = Vec::new();
    // One byte more than the cap tells a file that grew past it since it was opened.
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}
