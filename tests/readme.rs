//! The README's language example must compile: a newcomer copies it first.

#[test]
fn readme_language_example_compiles() {
    let readme = include_str!("../README.md");
    let section = readme.find("## The language by example").expect("section exists");
    let start = readme[section..].find("```").expect("code block") + section + 3;
    let end = readme[start..].find("```").expect("closed block") + start;
    let c = wick::compile_source("readme.wick", &readme[start..end], &wick::Options::default());
    assert!(!c.diagnostics.has_errors(), "{}", c.render_diagnostics(wick::diag::RenderStyle::PLAIN));
    let s = c.summary(None).expect("summary");
    assert_eq!(s.total_params, 150_990);
    assert_eq!(s.buffers, 512);
}

#[test]
fn readme_catalog_table_is_what_wick_catalog_prints() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wick"))
        .args(["catalog", "specs", "--format", "md"])
        .output()
        .expect("wick runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).expect("utf-8");
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(&table),
        "README's catalog table is stale; regenerate it with `wick catalog specs --format md`:\n{table}"
    );
}
