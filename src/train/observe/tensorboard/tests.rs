use super::record::read::{events, Event};
use super::*;
use crate::train::observe::fixture;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wick-tensorboard-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(PREFIX))
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> Vec<Event> {
    events(&std::fs::read(path).unwrap()).unwrap()
}

/// Every (step, tag, value) of the scalars in `events`.
fn scalars(events: &[Event]) -> Vec<(i64, String, f32)> {
    let mut out = Vec::new();
    for e in events {
        for (tag, v) in &e.values {
            if let Value::Scalar(v) = v {
                out.push((e.step, tag.clone(), *v));
            }
        }
    }
    out
}

/// A run of 2 epochs of 3 steps: its events, read back through the checksums.
fn logged(dir: &Path, every: u64) -> Vec<Event> {
    let (steps, history) = fixture::run(2, 3);
    let mut board = TensorBoard::create(dir, every, None).unwrap();
    for epoch in 0..2 {
        for s in &steps[3 * epoch..3 * epoch + 3] {
            board.step(s).unwrap();
        }
        board.epoch(&history[epoch]).unwrap();
    }
    board.finish(&history).unwrap();
    board.test(&fixture::metrics(0.4, 0.9), 2, 6).unwrap();
    read(board.path())
}

#[test]
fn steps_epochs_and_the_test_split_are_scalars_at_their_steps() {
    let dir = temp("scalars");
    let events = logged(&dir, 2);
    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    assert!(events.iter().all(|e| e.wall_time > 1.6e9), "wall times are seconds since 1970");
    let s = scalars(&events);
    let at =
        |tag: &str| s.iter().filter(|(_, t, _)| t == tag).map(|(step, _, v)| (*step, *v)).collect::<Vec<_>>();
    // Every second step's loss (2 / step in the fixture) and rate.
    assert_eq!(at("step/loss"), [(2, 1.0), (4, 0.5), (6, 2.0 / 6.0)]);
    assert_eq!(at("step/lr"), [(2, 0.1), (4, 0.1), (6, 0.1)]);
    // Each epoch at its last step: train and val figures (1/t, 1.2/t, ...), the rate, the epoch.
    assert_eq!(at("train/loss"), [(3, 1.0), (6, 0.5)]);
    assert_eq!(at("val/loss"), [(3, 1.2), (6, 0.6)]);
    assert_eq!(at("val/accuracy"), [(3, 0.4), (6, 0.7)]);
    assert_eq!(at("epoch/epoch"), [(3, 1.0), (6, 2.0)]);
    assert_eq!(at("test/accuracy"), [(6, 0.9)]);
    assert!(logged(&temp("epochs-only"), 0)
        .iter()
        .all(|e| e.values.iter().all(|(t, _)| !t.starts_with("step/"))));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_fresh_run_replaces_earlier_files_and_a_resumed_one_marks_its_restart() {
    let dir = temp("resume");
    logged(&dir, 1);
    logged(&dir, 1);
    assert_eq!(event_files(&dir).len(), 1, "a fresh run leaves one event file");
    let (steps, history) = fixture::run(3, 3);
    let mut board = TensorBoard::create(&dir, 1, Some(4)).unwrap();
    board.resumed(&history[..1]).unwrap();
    board.step(&steps[4]).unwrap();
    board.finish(&history).unwrap();
    let files = event_files(&dir);
    assert_eq!(files.len(), 2);
    assert_eq!(files[1], board.path(), "the resumed run's file sorts after the first");
    let resumed = read(board.path());
    assert!(resumed[1].session_start && resumed[1].step == 5, "{resumed:?}");
    // Only what came after the checkpoint: the earlier epochs are in the first file.
    assert_eq!(scalars(&resumed).iter().map(|s| s.0).collect::<Vec<_>>(), [5, 5]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_gans_sample_grid_is_an_image_at_its_epochs_step() {
    let dir = temp("grid");
    let (_, history) = fixture::run(2, 3);
    let mut board = TensorBoard::create(&dir, 0, None).unwrap();
    board.epoch(&history[0]).unwrap();
    // The program writes the epoch's grid after the observers hear of it.
    let png = crate::sample::write::png_grid(
        &candle_core::Tensor::zeros((4, 1, 3, 5), candle_core::DType::F32, &candle_core::Device::Cpu)
            .unwrap(),
        (-1.0, 1.0),
        None,
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("samples")).unwrap();
    std::fs::write(dir.join("samples/epoch_001.png"), &png).unwrap();
    board.epoch(&history[1]).unwrap();
    board.finish(&history).unwrap();
    let images: Vec<(i64, Value)> = read(board.path())
        .into_iter()
        .flat_map(|e| e.values.into_iter().filter(|(t, _)| t == "samples").map(move |(_, v)| (e.step, v)))
        .collect();
    assert_eq!(images.len(), 1, "epoch 2 wrote no grid");
    let Value::Image { height, width, png: written, .. } = &images[0].1 else { panic!("not an image") };
    assert_eq!(images[0].0, 3, "at epoch 1's last step");
    assert_eq!(written, &png);
    assert!(*height > 3 && *width > 5, "a 2 x 2 grid of 3 x 5 tiles: {height} x {width}");
    std::fs::remove_dir_all(&dir).ok();
}
