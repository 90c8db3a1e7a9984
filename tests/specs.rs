//! Snapshots of every catalog summary, as a table and as JSON. Each was compared with
//! `shared/reference/param_counts.md` before it was accepted; `tests/reference.rs` checks the
//! totals against the reference on every run.

use wick::report::{render_json, render_table, TableStyle};

fn summary(spec: &str, depth: Option<usize>) -> wick::report::Summary {
    let c = wick::compile_file(spec, &wick::Options::default()).expect("readable");
    assert!(!c.diagnostics.has_errors(), "{spec}: {:?}", c.diagnostics);
    c.summary(depth).expect("summary")
}

#[test]
fn seed_mlp() {
    let s = summary("specs/seed_mlp.wick", None);
    insta::assert_snapshot!("seed_mlp_table", render_table(&s, TableStyle::PLAIN));
    insta::assert_snapshot!("seed_mlp_json", render_json(&s));
}

#[test]
fn lenet5() {
    let s = summary("specs/lenet5.wick", None);
    insta::assert_snapshot!("lenet5_table", render_table(&s, TableStyle::PLAIN));
    insta::assert_snapshot!("lenet5_json", render_json(&s));
}

#[test]
fn resnet18() {
    insta::assert_snapshot!(
        "resnet18_table",
        render_table(&summary("specs/resnet18.wick", None), TableStyle::PLAIN)
    );
    insta::assert_snapshot!(
        "resnet18_table_depth2",
        render_table(&summary("specs/resnet18.wick", Some(2)), TableStyle::PLAIN)
    );
    insta::assert_snapshot!("resnet18_json_depth1", render_json(&summary("specs/resnet18.wick", Some(1))));
}

#[test]
fn wick_and_yaml_seed_mlp_give_identical_summaries() {
    let wick = summary("specs/seed_mlp.wick", None);
    let yaml = summary("specs/seed_mlp.yaml", None);
    assert_eq!(render_table(&wick, TableStyle::PLAIN), render_table(&yaml, TableStyle::PLAIN));
    assert_eq!(render_json(&wick), render_json(&yaml));
    assert_eq!(yaml.total_params, 185_235);
}
