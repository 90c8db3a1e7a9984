//! TensorBoard event files beside `metrics.csv`, so `tensorboard --logdir runs` shows a run's
//! curves (and a sweep's runs side by side, by folder). The same figures as the metrics log,
//! on the same x-axis, the optimizer step:
//!
//! - each logged step (`log_every`): `step/loss`, `step/<figure>` (`step/accuracy`; a GAN's
//!   `step/d_loss`, ...) and `step/lr`;
//! - each epoch, at its last step: `train/<figure>`, `val/<figure>`, `epoch/lr`, `epoch/epoch`;
//! - the test split's figures once, `test/<figure>`;
//! - a GAN's epoch sample grids (`samples/epoch_NNN.png`) as the image `samples`.
//!
//! A fresh run removes the event files an earlier run left in its folder (as `metrics.csv` is
//! replaced). A resumed run writes a new file that opens by marking the restart (a
//! `SessionLog` START just past the checkpoint's step): TensorBoard then drops what the earlier
//! files logged past the checkpoint, as for a restarted TensorFlow job. Each epoch's events are flushed
//! when it ends. The file's format: [`record`].

pub mod record;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{EpochRecord, Metrics, Observer, StepRecord};
use record::{Payload, Value};

/// The prefix of every event file's name; TensorBoard reads the files whose name holds it.
const PREFIX: &str = "events.out.tfevents.";

/// Writes a run's event file; see the module docs.
pub struct TensorBoard {
    dir: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
    /// Every this many steps a step's figures are written (0: epochs only).
    every: u64,
    /// The last epoch (and its last step), whose sample grid a GAN writes after the observers
    /// hear of the epoch: looked for at the next epoch, or at the end.
    grid_due: Option<(usize, u64)>,
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl TensorBoard {
    /// A new event file in the run folder `dir`, keeping every `every`-th step; `resumed_at`:
    /// the checkpoint's step a resumed run continues from.
    pub fn create(dir: &Path, every: u64, resumed_at: Option<u64>) -> std::io::Result<TensorBoard> {
        std::fs::create_dir_all(dir)?;
        if resumed_at.is_none() {
            remove_event_files(dir)?;
        }
        let time = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        // Seconds first, zero-padded: TensorBoard reads a folder's files in name order.
        let name =
            format!("{PREFIX}{:010}.{:09}.wick.{}", time.as_secs(), time.subsec_nanos(), std::process::id());
        let path = dir.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let out = BufWriter::new(options.open(&path)?);
        let mut board = TensorBoard { dir: dir.to_path_buf(), path, out, every, grid_due: None };
        board.write(0, &Payload::FileVersion)?;
        if let Some(step) = resumed_at {
            // What earlier files logged past the checkpoint (a killed run's last steps) is
            // replaced by what this run logs.
            board.write(step + 1, &Payload::SessionStart)?;
        }
        board.out.flush()?;
        Ok(board)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, step: u64, payload: &Payload) -> std::io::Result<()> {
        let data = record::event(now(), step as i64, payload);
        self.out.write_all(&record::record(&data))
    }

    fn scalars(&mut self, step: u64, values: Vec<(String, f64)>) -> std::io::Result<()> {
        let values = values.into_iter().map(|(tag, v)| (tag, Value::Scalar(v as f32))).collect();
        self.write(step, &Payload::Summary(values))
    }

    /// The sample grid of the epoch due, once the program has written it.
    fn grid(&mut self) -> std::io::Result<()> {
        let Some((epoch, step)) = self.grid_due.take() else { return Ok(()) };
        let file = self.dir.join(format!("samples/epoch_{epoch:03}.png"));
        match std::fs::read(&file).ok().and_then(png_image) {
            Some(image) => self.write(step, &Payload::Summary(vec![("samples".into(), image)])),
            None => Ok(()),
        }
    }
}

/// `figures` under `prefix/`.
fn tagged<'a>(prefix: &'a str, figures: &'a Metrics) -> impl Iterator<Item = (String, f64)> + 'a {
    figures.0.iter().map(move |(n, v)| (format!("{prefix}/{n}"), *v))
}

/// A PNG as an image value, its size and channels from its header (IHDR).
fn png_image(png: Vec<u8>) -> Option<Value> {
    if png.len() < 26 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    let channels = match png[25] {
        0 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => 3,
    };
    Some(Value::Image { width: be(16), height: be(20), channels, png })
}

/// Remove the event files in `dir` (an earlier run's).
fn remove_event_files(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(PREFIX) && !entry.file_type()?.is_dir() {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

impl Observer for TensorBoard {
    fn step(&mut self, r: &StepRecord) -> std::io::Result<()> {
        if self.every == 0 || !r.step.is_multiple_of(self.every) {
            return Ok(());
        }
        let mut values: Vec<(String, f64)> = tagged("step", &r.figures).collect();
        if values.is_empty() {
            values.push(("step/loss".into(), r.loss));
        }
        values.push(("step/lr".into(), r.lr));
        self.scalars(r.step, values)
    }

    fn epoch(&mut self, r: &EpochRecord) -> std::io::Result<()> {
        let mut values: Vec<(String, f64)> = tagged("train", &r.train).chain(tagged("val", &r.val)).collect();
        values.push(("epoch/lr".into(), r.lr));
        values.push(("epoch/epoch".into(), r.epoch as f64));
        self.scalars(r.step, values)?;
        self.grid()?;
        self.grid_due = Some((r.epoch, r.step));
        self.out.flush()
    }

    /// The earlier epochs are in the earlier files already.
    fn resumed(&mut self, _history: &[EpochRecord]) -> std::io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, _history: &[EpochRecord]) -> std::io::Result<()> {
        self.grid()?;
        self.out.flush()
    }

    fn test(&mut self, figures: &Metrics, _epoch: usize, step: u64) -> std::io::Result<()> {
        let values = tagged("test", figures).collect();
        self.scalars(step, values)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests;
