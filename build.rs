//! Embeds the standard block library (`std/*.wick`) so `use "std/…"` works wherever the
//! binary runs, not only inside a checkout.

use std::fmt::Write;
use std::path::Path;

fn main() {
    // Read when the script runs, not baked in when it was compiled: a target folder copied
    // from another checkout would otherwise embed (and watch) that checkout's std/.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let dir = Path::new(&manifest).join("std");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".wick") || n.ends_with(".yaml"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut code = String::from(
        "/// The bundled block library: (file name, contents).\npub static STD_FILES: &[(&str, &str)] = &[\n",
    );
    for n in &names {
        let path = dir.join(n);
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(code, "    ({n:?}, include_str!({:?})),", path.display().to_string()).unwrap();
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("std_files.rs");
    std::fs::write(out, code).unwrap();
}
