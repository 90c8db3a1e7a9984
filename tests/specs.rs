//! Snapshots of every catalog summary, as a table and as JSON, and the YAML twins. Each
//! snapshot was compared with PyTorch's figures (recorded in `tests/reference.rs`) before it
//! was accepted; `tests/reference.rs` checks the totals against them on every run.

use wick::report::{render_json, render_table, Summary, TableStyle};

fn summary(spec: &str, depth: Option<usize>) -> Summary {
    let c = wick::compile_file(spec, &wick::Options::default()).expect("readable");
    assert!(!c.diagnostics.has_errors(), "{spec}: {:?}", c.diagnostics);
    c.summary(depth).expect("summary")
}

/// The catalog's `.wick` files (YAML twins are checked against them below).
fn catalog(ext: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir("specs")
        .expect("specs/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

fn stem(path: &str) -> &str {
    std::path::Path::new(path).file_stem().and_then(|s| s.to_str()).expect("utf-8 name")
}

#[test]
fn every_catalog_summary_matches_its_snapshots() {
    for spec in catalog("wick") {
        let s = summary(&spec, None);
        insta::assert_snapshot!(format!("{}_table", stem(&spec)), render_table(&s, TableStyle::PLAIN));
        insta::assert_snapshot!(format!("{}_json", stem(&spec)), render_json(&s));
    }
}

#[test]
fn folded_summaries_match_their_snapshots() {
    let folded = summary("specs/resnet18.wick", Some(2));
    insta::assert_snapshot!("resnet18_table_depth2", render_table(&folded, TableStyle::PLAIN));
    let folded = summary("specs/resnet18.wick", Some(1));
    insta::assert_snapshot!("resnet18_json_depth1", render_json(&folded));
    // GoogLeNet folded to its stages, named as torchvision names them.
    let folded = summary("specs/googlenet.wick", Some(2));
    insta::assert_snapshot!("googlenet_table_depth2", render_table(&folded, TableStyle::PLAIN));
}

#[test]
fn every_yaml_twin_gives_the_same_summary_as_its_wick_file() {
    let twins = catalog("yaml");
    assert!(!twins.is_empty(), "the catalog has YAML twins");
    for yaml_path in twins {
        let wick_path = yaml_path.replace(".yaml", ".wick");
        let yaml = summary(&yaml_path, None);
        let wick = summary(&wick_path, None);
        assert_eq!(
            render_table(&wick, TableStyle::PLAIN),
            render_table(&yaml, TableStyle::PLAIN),
            "{yaml_path}"
        );
        assert_eq!(render_json(&wick), render_json(&yaml), "{yaml_path}");
    }
}
