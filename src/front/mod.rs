//! Front ends: `.wick` text and YAML, both parsed into one [`ast::Module`].

pub mod ast;
mod descent;
pub mod dsl;
pub mod span;
pub mod yaml;

pub use descent::is_word;

use crate::diag::Diagnostic;
use ast::Module;
use span::FileId;

/// Which surface a file is written in, by extension.
pub fn parse(name: &str, text: &str, file: FileId) -> Result<Module, Diagnostic> {
    if name.ends_with(".yaml") || name.ends_with(".yml") {
        yaml::parse_file(text, file)
    } else {
        dsl::parse_file(text, file)
    }
}
