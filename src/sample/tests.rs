use super::*;

fn model(text: &str) -> Model {
    Model::from_source("g.wick", text, &Options::default()).unwrap()
}

const GENERATOR: &str =
    "dim N = 1\nmodel G {\n input z: [N, 4]\n output img = z |> fc: Linear(6) |> Tanh |> reshape([N, 1, 2, 3])\n}\n";

#[test]
fn latent_is_seeded_and_the_first_samples_do_not_depend_on_n() {
    let m = model(GENERATOR);
    let eight = latent(&m, 8, 5, None).unwrap()["z"].to_vec2::<f32>().unwrap();
    let three = latent(&m, 3, 5, None).unwrap()["z"].to_vec2::<f32>().unwrap();
    assert_eq!(eight.len(), 8);
    assert_eq!(eight[..3], three[..]);
    assert_ne!(latent(&m, 3, 6, None).unwrap()["z"].to_vec2::<f32>().unwrap(), three);
    // A standard normal: 400 draws have mean near 0 and variance near 1.
    let many = latent(&m, 100, 1, None).unwrap()["z"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mean = many.iter().sum::<f32>() / 400.0;
    let var = many.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 400.0;
    assert!(mean.abs() < 0.2 && (var - 1.0).abs() < 0.25, "mean {mean}, variance {var}");
}

#[test]
fn inputs_that_cannot_be_drawn_are_refused() {
    let ids =
        model("dim N = 1\nmodel E {\n input t: [N, 3] of i64\n output y = t |> e: Embedding(5, 2)\n}\n");
    // Token ids of a sequence are no class: --label fills one class per sample.
    assert!(latent(&ids, 2, 0, None).unwrap_err().to_string().contains("--label"));
    assert!(latent(&ids, 2, 0, Some(1)).unwrap_err().to_string().contains("a class per sample"));
    let classes = model("dim N = 1\nmodel C {\n input z: [N, 2]\n input c: [N] of i64\n output y = c |> e: Embedding(5, 2)\n}\n");
    assert_eq!(latent(&classes, 3, 0, Some(4)).unwrap()["c"].to_vec1::<i64>().unwrap(), [4, 4, 4]);
    let fixed = model("model F {\n input z: [1, 4]\n output y = z |> fc: Linear(2)\n}\n");
    assert!(latent(&fixed, 1, 0, None).is_ok());
    assert!(latent(&fixed, 2, 0, None).unwrap_err().to_string().contains("fixed batch dim 1"));
}

#[test]
fn missing_run_folder_weights_name_both_files_looked_for() {
    let e = run_folder_weights("specs/nowhere_such.wick", "G").unwrap_err().to_string();
    assert!(e.contains("runs/nowhere_such/G.safetensors"), "{e}");
    assert!(e.contains("runs/nowhere_such/weights.safetensors"), "{e}");
    assert!(e.contains("--random-weights"), "{e}");
}

#[test]
fn formats_come_from_the_extension() {
    assert_eq!(Format::of(Path::new("a/b.PNG")).unwrap(), Format::Png);
    assert_eq!(Format::of(Path::new("b.npy")).unwrap(), Format::Npy);
    assert_eq!(Format::of(Path::new("b.safetensors")).unwrap(), Format::Safetensors);
    assert!(Format::of(Path::new("b.jpg")).is_err());
    assert!(Format::of(Path::new("b")).is_err());
}
