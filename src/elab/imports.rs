//! Loading a spec and the files it `use`s, depth first, with import-cycle detection.

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
    let text = read(Path::new(root), files)?;
    let mut loaded = Loaded::default();
    let key = canonical(Path::new(root), files);
    let mut stack = vec![key.clone()];
    parse_and_follow(root, key, text, files, &mut stack, &mut loaded);
    Ok(loaded)
}

fn parse_and_follow(
    name: &str,
    key: PathBuf,
    text: String,
    files: &Files,
    stack: &mut Vec<PathBuf>,
    loaded: &mut Loaded,
) {
    let file = loaded.sources.add(name, Some(key), text);
    let parsed = crate::front::parse(name, &loaded.sources.get(file).text.clone(), file);
    let module = match parsed {
        Ok(m) => m,
        Err(d) => {
            loaded.diags.push(d);
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
            Ok(text) => {
                stack.push(key.clone());
                parse_and_follow(&shown, key, text, files, stack, loaded);
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

/// `use "std/…"` names a file of the bundled block library, wherever the importer lives.
fn is_std(rel: &str) -> bool {
    rel.starts_with("std/")
}

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/std_files.rs"));
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
        Files::Disk => path.canonicalize().unwrap_or_else(|_| normalize(path)),
        Files::Memory(_) => normalize(path),
    }
}

/// `a/./b/../c` -> `a/c`, without touching the disk.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn read(path: &Path, files: &Files) -> std::io::Result<String> {
    if path.starts_with("std") {
        if let Some(text) = std_file(path) {
            return Ok(text.to_string());
        }
    }
    match files {
        Files::Memory(map) => map
            .get(&normalize(path).to_string_lossy().to_string())
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")),
        Files::Disk => {
            let meta = std::fs::metadata(path)?;
            if !meta.is_file() {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
            }
            let mut text = String::new();
            std::fs::File::open(path)?.take(MAX_FILE_BYTES).read_to_string(&mut text)?;
            Ok(text)
        }
    }
}
