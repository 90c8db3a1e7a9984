//! `wick catalog`: compile every spec in a folder and print one row each.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use wick::report::catalog::{self, Entry, Figures};

use super::{print_diagnostics, EXIT_SPEC, EXIT_USAGE};

#[derive(Args, Debug)]
pub struct CatalogArgs {
    /// The folder of specs (.wick, .yaml, .yml; not recursive).
    pub dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CatalogFormat::Table)]
    pub format: CatalogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CatalogFormat {
    Md,
    Table,
    Json,
}

pub fn run(args: CatalogArgs) -> ExitCode {
    let files = match catalog::spec_files(&args.dir) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: cannot read folder `{}`: {e}", args.dir.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut failed = false;
    let mut entries = Vec::with_capacity(files.len());
    for path in files {
        let spec = path.to_string_lossy().into_owned();
        let figures = match wick::compile_file(&spec, &wick::Options::default()) {
            Err(e) => {
                eprintln!("error: cannot read `{spec}`: {e}");
                None
            }
            Ok(c) if c.diagnostics.has_errors() => {
                print_diagnostics(&c);
                None
            }
            Ok(c) => c.summary(None).ok().map(|s| Figures::of(&s)),
        };
        failed |= figures.is_none();
        entries.push(Entry { spec, twins: Vec::new(), figures });
    }
    let entries = catalog::merge_twins(entries);
    let text = match args.format {
        CatalogFormat::Md => catalog::render_catalog_md(&entries),
        CatalogFormat::Table => catalog::render_catalog_table(&entries),
        CatalogFormat::Json => catalog::render_catalog_json(&entries),
    };
    print!("{text}");
    if failed {
        ExitCode::from(EXIT_SPEC)
    } else {
        ExitCode::SUCCESS
    }
}
