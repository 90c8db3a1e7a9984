//! `wick catalog`: one row per shipped spec with the reference figures. The catalog grows as
//! specs land, so this asserts the rows of the specs below, not the whole output.

mod common;

use common::wick;

fn stdout(args: &[&str]) -> String {
    let out = wick(args);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Rows that must be in the catalog: spec, params, running stats, MACs, input, output. (The
/// spec cell may go on with its YAML twins.)
const ROWS: [[&str; 6]; 6] = [
    ["`specs/lenet5.wick`", "61,706", "0", "416,520", "[1, 1, 32, 32]", "[1, 10]"],
    ["`specs/resnet18.wick`", "11,689,512", "9,600", "1,814,073,344", "[1, 3, 224, 224]", "[1, 1000]"],
    ["`specs/seed_mlp.wick`", "185,235", "0", "184,800", "[1, 784]", "[1, 10]"],
    ["`specs/resnet50.wick`", "25,557,032", "53,120", "4,089,184,256", "[1, 3, 224, 224]", "[1, 1000]"],
    ["`specs/gpt2_small.wick`", "124,439,808", "0", "145,824,153,600", "[1, 1024] i64", "[1, 1024, 50257]"],
    [
        "`specs/tinyllama_1_1b.wick`",
        "1,100,048,384",
        "0",
        "133,882,183,680",
        "[1, 128] i64",
        "[1, 128, 32000]",
    ],
];

#[test]
fn markdown_has_a_row_per_shipped_spec_with_its_reference_figures() {
    let md = stdout(&["catalog", "specs", "--format", "md"]);
    let mut lines = md.lines();
    assert_eq!(lines.next(), Some("| spec | params | running stats | MACs | input | output |"));
    assert_eq!(lines.next(), Some("|---|---:|---:|---:|---|---|"));
    for row in ROWS {
        let line = md.lines().find(|l| l.starts_with(&format!("| {}", row[0]))).expect(row[0]);
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells[1..], row[1..], "{line}");
    }
    assert!(md.contains("| `specs/seed_mlp.wick` (and `.yaml`) |"), "{md}");
    // One row per .wick file; a YAML twin folds into its .wick row.
    let names: Vec<String> = std::fs::read_dir("specs")
        .expect("specs/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let rows = names
        .iter()
        .filter(|n| match n.rsplit_once('.') {
            Some((_, "wick")) => true,
            Some((stem, "yaml" | "yml")) => !names.contains(&format!("{stem}.wick")),
            _ => false,
        })
        .count();
    assert_eq!(md.lines().count() - 2, rows, "{md}");
    let mut sorted: Vec<&str> = md.lines().skip(2).collect();
    sorted.sort();
    assert_eq!(sorted, md.lines().skip(2).collect::<Vec<_>>(), "rows sorted by spec");
}

#[test]
fn table_aligns_numbers_and_json_keeps_them_exact() {
    let table = stdout(&["catalog", "specs"]);
    let resnet = table.lines().find(|l| l.starts_with("specs/resnet18.wick ")).expect("resnet18 row");
    assert!(resnet.contains("  11,689,512  ") && resnet.contains("1,814,073,344"), "{resnet}");
    let header = table.lines().next().expect("header");
    let params_end = header.find("params").expect("params column") + "params".len();
    // Right-aligned: the number ends where the heading does.
    assert_eq!(resnet.find("11,689,512").map(|i| i + "11,689,512".len()), Some(params_end), "{table}");

    let json: serde_json::Value =
        serde_json::from_str(&stdout(&["catalog", "specs", "--format", "json"])).expect("JSON");
    assert_eq!(json["schema"], "wick.catalog/1");
    let specs = json["specs"].as_array().expect("specs");
    let row = |name: &str| specs.iter().find(|s| s["spec"] == name).unwrap_or_else(|| panic!("{name}"));
    let resnet = row("specs/resnet18.wick");
    assert_eq!((resnet["params"].as_u64(), resnet["buffers"].as_u64()), (Some(11_689_512), Some(9_600)));
    assert_eq!(resnet["macs"].as_i64(), Some(1_814_073_344));
    assert_eq!(resnet["inputs"][0]["shape"], serde_json::json!([1, 3, 224, 224]));
    assert_eq!(resnet["outputs"][0]["name"], "logits");
    assert_eq!(row("specs/seed_mlp.wick")["twins"], serde_json::json!(["specs/seed_mlp.yaml"]));
    assert_eq!(row("specs/lenet5.wick")["ok"], true);
}

#[test]
fn a_broken_spec_gets_an_error_row_and_exit_1() {
    let dir = std::env::temp_dir().join(format!("wick-catalog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::copy("specs/lenet5.wick", dir.join("lenet5.wick")).expect("copy");
    std::fs::copy("tests/errors/batchnorm_mismatch.wick", dir.join("broken.wick")).expect("copy");
    std::fs::write(dir.join("notes.txt"), "not a spec").expect("write");
    let out = wick(&["catalog", dir.to_str().expect("utf-8"), "--format", "md"]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("E0301"));
    assert!(md.contains("broken.wick` | error |"), "{md}");
    assert!(md.contains("| 61,706 |") && !md.contains("notes"), "{md}");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(wick(&["catalog", "no/such/folder"]).status.code(), Some(2));
}
