//! The bundled block library (`std/`) as a listing: every block with its signature, for
//! `wick blocks` and for the unknown-block error's `use` line.

use crate::front::ast::{DefKind, Item};
use crate::front::span::FileId;

/// One block of the library.
pub struct StdBlock {
    /// Its file, as a `use` names it (`std/conv.wick`).
    pub file: String,
    pub name: String,
    /// Its header as written, on one line: `ConvNormAct(x: [N, cin, h, w], out: int, ...) -> [...]`.
    pub signature: String,
}

/// Every block of the library, by file, in the order written; parsed once (an unknown-block
/// error asks for each name it reports).
pub fn std_blocks() -> &'static [StdBlock] {
    static BLOCKS: std::sync::OnceLock<Vec<StdBlock>> = std::sync::OnceLock::new();
    BLOCKS.get_or_init(parse_blocks)
}

fn parse_blocks() -> Vec<StdBlock> {
    let mut blocks = Vec::new();
    for (file, text) in super::imports::std_files() {
        let Ok(module) = crate::front::parse(file, text, FileId(0)) else { continue };
        for item in &module.items {
            let Item::Def(def) = item else { continue };
            if def.kind != DefKind::Block {
                continue;
            }
            // The header runs from the name to the body's opening brace (a type holds none).
            let from = def.name.span.start as usize;
            let header = text.get(from..).and_then(|rest| rest.split('{').next()).unwrap_or(&def.name.name);
            blocks.push(StdBlock {
                file: format!("std/{file}"),
                name: def.name.name.clone(),
                signature: header.split_whitespace().collect::<Vec<_>>().join(" ").replace("( ", "("),
            });
        }
    }
    blocks
}

/// What `wick blocks` prints: each file's `use` line, then its blocks' signatures.
pub fn listing() -> String {
    let mut out = String::new();
    let mut file = "";
    for b in std_blocks() {
        if b.file != file {
            out += &format!("{}use \"{}\"\n", if file.is_empty() { "" } else { "\n" }, b.file);
            file = &b.file;
        }
        out += &format!("  {}\n", b.signature);
    }
    out
}

/// The `use` line that brings block `name` in, if the library has it.
pub fn use_line(name: &str) -> Option<String> {
    std_blocks().iter().find(|b| b.name == name).map(|b| format!("use \"{}\"", b.file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_lists_its_blocks_with_their_signatures() {
        let text = listing();
        assert!(text.contains("use \"std/conv.wick\""), "{text}");
        assert!(text.contains("  ConvNormAct(x: [N, cin, h, w], out: int, kernel: int = 3,"), "{text}");
        assert_eq!(use_line("InvertedResidual").as_deref(), Some("use \"std/mobilenet.wick\""));
        assert_eq!(use_line("Conv2d"), None);
    }
}
