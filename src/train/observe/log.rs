//! The metrics log: one row per step (thinned to every N-th if asked) and one per epoch, as CSV
//! or JSON lines by the file's extension, flushed after each epoch so a crashed run keeps it.
//!
//! Both formats hold the same rows under the same column names, so `pd.read_csv(p)` and
//! `pd.read_json(p, lines=True)` give the same frame; `kind` tells the rows apart:
//!
//! ```text
//! kind,epoch,step,elapsed_s,lr,loss,accuracy,samples,train_loss,train_accuracy,val_loss,val_accuracy,samples_per_s
//! step,1,1,0.05,0.1,2.31,0.25,32,,,,,
//! epoch,1,40,2.1,0.1,,,,0.52,0.83,0.47,0.86,610.2
//! ```
//!
//! One file rather than a steps file and an epochs file: a single path to pass around, one
//! schema for both formats, and `df[df.kind == "epoch"]` is all the splitting a reader needs.
//! A step's figures (`loss`, `accuracy`; a GAN's `d_loss`, `g_loss`, ...) are that step's; an
//! epoch's are `train_*` and `val_*`. A run with a test split ends with one `test` row of
//! `test_*` figures, on the weights the run reports. CSV cells a
//! row does not have are empty (NaN in pandas); JSON lines leave the keys out, and write
//! non-finite numbers as `null`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{EpochRecord, Metrics, Observer, Plan, StepRecord};
use crate::report::csv_field;
use crate::train::checkpoint::RunState;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Csv,
    JsonLines,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Cell {
    Kind(&'static str),
    Int(u64),
    Float(f64),
}

/// Writes the log; see the module docs.
pub struct MetricsLog {
    path: PathBuf,
    format: Format,
    every: u64,
    /// Open once the run starts (at once for a fresh log).
    out: Option<BufWriter<File>>,
    /// The CSV columns, fixed when the run starts.
    columns: Vec<String>,
    /// A resumed run's earlier rows, up to its checkpoint: kept if the columns still match.
    earlier: Option<Vec<String>>,
    /// Whether the file already holds the history a resumed run is told about.
    holds_history: bool,
    /// Whether the run has a test split: its `test_*` columns.
    test: bool,
}

impl MetricsLog {
    /// Create the log at `path` (and its folder), keeping every `every`-th step's row (`1`:
    /// all of them, `0`: none, epochs only). The extension picks the format.
    pub fn create(path: &Path, every: u64) -> std::io::Result<MetricsLog> {
        let mut log = MetricsLog::at(path, every)?;
        log.out = Some(BufWriter::new(open(path, false)?));
        Ok(log)
    }

    /// The log of a resumed run: the rows an uninterrupted run would have written up to the
    /// checkpoint `state` are kept, the rest (written after it, before the run stopped) dropped,
    /// and new rows appended; so the finished log equals an uninterrupted run's, timings aside.
    pub fn resume(path: &Path, every: u64, state: &RunState) -> std::io::Result<MetricsLog> {
        let mut log = MetricsLog::at(path, every)?;
        let text = match crate::train::files::read_regular(path) {
            // A log cut by a kill may end inside a character: what is whole is kept.
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(in_log(path, e)),
        };
        // A partial epoch that the checkpoint recorded is replayed, so its row goes too.
        let last_epoch = state.cursor.as_ref().map_or(state.epochs_done, |c| c.epoch) as u64;
        log.earlier = Some(earlier_rows(&text, log.format, state.step, last_epoch));
        Ok(log)
    }

    fn at(path: &Path, every: u64) -> std::io::Result<MetricsLog> {
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            Some("jsonl") => Format::JsonLines,
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("the metrics log `{}` must end in `.csv` or `.jsonl`", path.display()),
                ))
            }
        };
        Ok(MetricsLog {
            path: path.to_path_buf(),
            format,
            every,
            out: None,
            columns: Vec::new(),
            earlier: None,
            holds_history: false,
            test: false,
        })
    }

    /// Columns for the test split's figures, written in one `test` row when the run ends.
    pub fn with_test_split(mut self, test: bool) -> MetricsLog {
        self.test = test;
        self
    }

    fn writer(&mut self) -> std::io::Result<&mut BufWriter<File>> {
        let path = &self.path;
        self.out.as_mut().ok_or_else(|| in_log(path, std::io::Error::other("the run has not started")))
    }

    fn write_row(&mut self, row: &[(String, Cell)]) -> std::io::Result<()> {
        let line = match self.format {
            Format::Csv => csv_line(&self.columns, row).map_err(|column| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "the metrics log `{}` has no column `{column}`: its columns come from the \
                         metric names the run announced at its start ({})",
                        self.path.display(),
                        self.columns.join(", ")
                    ),
                )
            })?,
            Format::JsonLines => json_line(row),
        };
        writeln!(self.writer()?, "{line}").map_err(|e| in_log(&self.path, e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer()?.flush().map_err(|e| in_log(&self.path, e))
    }
}

impl Observer for MetricsLog {
    fn start(&mut self, plan: &Plan) -> std::io::Result<()> {
        self.columns = columns(&plan.metric_names, self.test);
        let header = match self.format {
            Format::Csv => Some(self.columns.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",")),
            Format::JsonLines => None,
        };
        let mut lines = match self.earlier.take() {
            // Earlier rows under other columns (metrics changed on resume) start a fresh log.
            Some(rows) if rows.first() == header.as_ref() || header.is_none() => rows,
            _ => header.into_iter().collect(),
        };
        self.holds_history = lines.len() > usize::from(self.format == Format::Csv);
        if self.out.is_none() {
            lines.push(String::new());
            crate::train::files::replace_unsynced(&self.path, |tmp| std::fs::write(tmp, lines.join("\n")))
                .map_err(|e| in_log(&self.path, e))?;
            self.out = Some(BufWriter::new(open(&self.path, true)?));
            return Ok(());
        }
        for line in &lines {
            writeln!(self.writer()?, "{line}").map_err(|e| in_log(&self.path, e))?;
        }
        self.flush()
    }

    fn resumed(&mut self, history: &[EpochRecord]) -> std::io::Result<()> {
        if self.holds_history {
            return Ok(());
        }
        history.iter().try_for_each(|r| self.epoch(r))
    }

    fn step(&mut self, record: &StepRecord) -> std::io::Result<()> {
        if self.every > 0 && record.step.is_multiple_of(self.every) {
            self.write_row(&step_row(record))?;
        }
        Ok(())
    }

    fn epoch(&mut self, record: &EpochRecord) -> std::io::Result<()> {
        self.write_row(&epoch_row(record))?;
        self.flush()
    }

    fn finish(&mut self, _history: &[EpochRecord]) -> std::io::Result<()> {
        self.flush()
    }

    fn test(&mut self, figures: &Metrics, epoch: usize, step: u64) -> std::io::Result<()> {
        let mut row = vec![
            ("kind".to_string(), Cell::Kind("test")),
            ("epoch".into(), Cell::Int(epoch as u64)),
            ("step".into(), Cell::Int(step)),
        ];
        row.extend(figures.0.iter().map(|(n, v)| (format!("test_{n}"), Cell::Float(*v))));
        self.write_row(&row)?;
        self.flush()
    }
}

/// The log file, created (and its folder) or truncated, or opened to append to; never through a
/// symbolic link, so a link planted in a run folder cannot redirect the log.
fn open(path: &Path, append: bool) -> std::io::Result<File> {
    let open = || {
        crate::train::files::ensure_parent(path)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true);
        if append {
            options.append(true);
        } else {
            options.truncate(true);
        }
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        options.open(path)
    };
    open().map_err(|e| in_log(path, e))
}

/// The header (CSV) and the rows of `text` an uninterrupted run would have written by `step`
/// and `epochs` whole epochs; a row that does not parse ends the kept part (a torn last line).
fn earlier_rows(text: &str, format: Format, step: u64, epochs: u64) -> Vec<String> {
    let mut lines = text.lines();
    let mut kept = Vec::new();
    let mut names = Vec::new();
    if format == Format::Csv {
        let Some(header) = lines.next() else { return kept };
        kept.push(header.to_string());
        names = header.split(',').collect();
    }
    for line in lines {
        let cell = |name: &str| cell(format, &names, line, name);
        let number = |name: &str| cell(name).and_then(|v| v.parse::<u64>().ok());
        let keep = match (cell("kind").as_deref(), number("step"), number("epoch")) {
            (Some("step"), Some(s), _) => s <= step,
            (Some("epoch"), _, Some(e)) => e <= epochs,
            // The test figures of the weights the run ended with: a resumed run writes its own.
            (Some("test"), ..) => false,
            _ => break,
        };
        if keep {
            kept.push(line.to_string());
        }
    }
    kept
}

/// The text of column `name` in a row; `None` for a row cut short or that does not parse.
fn cell(format: Format, names: &[&str], line: &str, name: &str) -> Option<String> {
    match format {
        Format::Csv => {
            let cells: Vec<&str> = line.split(',').collect();
            let at = names.iter().position(|n| *n == name).filter(|_| cells.len() == names.len())?;
            Some(cells[at].to_string())
        }
        Format::JsonLines => {
            let row: serde_json::Value = serde_json::from_str(line).ok()?;
            Some(match &row[name] {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            })
        }
    }
}

fn in_log(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot write the metrics log `{}`: {e}", path.display()))
}

const STEP_COLUMNS: [&str; 5] = ["kind", "epoch", "step", "elapsed_s", "lr"];

/// Every column either kind of row can fill: the step columns with the step's own figures
/// under their names, each figure for each split, then the epoch's rate.
fn columns(metric_names: &[String], test: bool) -> Vec<String> {
    let mut names: Vec<&str> = metric_names.iter().map(String::as_str).collect();
    if names.is_empty() {
        names.push("loss");
    }
    let mut out: Vec<String> = STEP_COLUMNS.iter().map(|c| c.to_string()).collect();
    out.extend(names.iter().map(|n| n.to_string()));
    out.push("samples".into());
    let test = test.then_some("test");
    for split in ["train", "val"].into_iter().chain(test) {
        out.extend(names.iter().map(|n| format!("{split}_{n}")));
    }
    out.push("samples_per_s".into());
    out
}

fn step_row(r: &StepRecord) -> Vec<(String, Cell)> {
    let cells = [
        Cell::Kind("step"),
        Cell::Int(r.epoch as u64),
        Cell::Int(r.step),
        Cell::Float(r.elapsed_s),
        Cell::Float(r.lr),
    ];
    let mut row: Vec<(String, Cell)> = STEP_COLUMNS.iter().map(|c| c.to_string()).zip(cells).collect();
    row.extend(r.figures.0.iter().map(|(n, v)| (n.clone(), Cell::Float(*v))));
    row.push(("samples".into(), Cell::Int(r.samples as u64)));
    row
}

fn epoch_row(r: &EpochRecord) -> Vec<(String, Cell)> {
    let mut row = vec![
        ("kind".to_string(), Cell::Kind("epoch")),
        ("epoch".into(), Cell::Int(r.epoch as u64)),
        ("step".into(), Cell::Int(r.step)),
        ("elapsed_s".into(), Cell::Float(r.elapsed_s)),
        ("lr".into(), Cell::Float(r.lr)),
    ];
    for (split, m) in [("train", &r.train), ("val", &r.val)] {
        row.extend(m.0.iter().map(|(n, v)| (format!("{split}_{n}"), Cell::Float(*v))));
    }
    row.push(("samples_per_s".into(), Cell::Float(r.samples_per_s)));
    row
}

/// The row under `columns`, empty where it has no value; `Err(name)` for a value that has no
/// column.
fn csv_line(columns: &[String], row: &[(String, Cell)]) -> Result<String, String> {
    if let Some((name, _)) = row.iter().find(|(n, _)| !columns.contains(n)) {
        return Err(name.clone());
    }
    let cells: Vec<String> = columns
        .iter()
        .map(|c| match row.iter().find(|(n, _)| n == c).map(|(_, v)| v) {
            None => String::new(),
            Some(Cell::Kind(k)) => (*k).to_string(),
            Some(Cell::Int(i)) => i.to_string(),
            // `{:?}` keeps full precision and switches to exponents for tiny or huge values;
            // NaN and inf come out as pandas reads them.
            Some(Cell::Float(f)) => format!("{f:?}"),
        })
        .collect();
    Ok(cells.join(","))
}

fn json_line(row: &[(String, Cell)]) -> String {
    let pairs: Vec<String> = row
        .iter()
        .map(|(name, cell)| {
            let value = match cell {
                Cell::Kind(k) => serde_json::Value::from(*k),
                Cell::Int(i) => serde_json::Value::from(*i),
                // Non-finite floats have no JSON number; `from` makes them null.
                Cell::Float(f) => serde_json::Value::from(*f),
            };
            format!("{}:{value}", serde_json::Value::from(name.as_str()))
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("wick-log-{}-{name}", std::process::id()))
    }

    /// Replay a run of 2 epochs of 3 steps, the second epoch's validation loss NaN.
    fn write(path: &Path, every: u64) -> String {
        let (steps, mut history) = fixture::run(2, 3);
        history[1].val.0[0].1 = f64::NAN;
        let mut log = MetricsLog::create(path, every).unwrap();
        log.start(&fixture::plan(2, 3)).unwrap();
        for e in &history {
            for s in steps.iter().filter(|s| s.epoch == e.epoch) {
                log.step(s).unwrap();
            }
            log.epoch(e).unwrap();
        }
        // No finish: the epochs' flushes alone must have put everything on disk.
        let text = std::fs::read_to_string(path).unwrap();
        std::fs::remove_file(path).unwrap();
        text
    }

    #[test]
    fn csv_rows_parse_back_under_one_header() {
        let text = write(&temp("rows.csv"), 1);
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
        let header = &rows[0];
        assert_eq!(
            header.join(","),
            "kind,epoch,step,elapsed_s,lr,loss,accuracy,samples,train_loss,train_accuracy,val_loss,val_accuracy,samples_per_s"
        );
        assert!(rows.iter().all(|r| r.len() == header.len()));
        let col = |r: &Vec<&str>, name: &str| r[header.iter().position(|h| *h == name).unwrap()].to_string();
        let kinds: Vec<String> = rows[1..].iter().map(|r| col(r, "kind")).collect();
        assert_eq!(kinds, ["step", "step", "step", "epoch", "step", "step", "step", "epoch"]);
        let step2 = &rows[2];
        assert_eq!(col(step2, "loss").parse::<f64>().unwrap(), 1.0);
        assert_eq!(col(step2, "samples"), "10");
        assert_eq!(col(step2, "val_loss"), "");
        let epoch2 = &rows[8];
        assert_eq!(col(epoch2, "step"), "6");
        assert_eq!(col(epoch2, "train_accuracy").parse::<f64>().unwrap(), 0.75);
        assert!(col(epoch2, "val_loss").parse::<f64>().unwrap().is_nan());
        assert_eq!(col(epoch2, "loss"), "");
    }

    #[test]
    fn json_lines_hold_the_same_rows_with_null_for_nan() {
        let text = write(&temp("rows.jsonl"), 2);
        let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let steps: Vec<u64> =
            rows.iter().filter(|r| r["kind"] == "step").map(|r| r["step"].as_u64().unwrap()).collect();
        assert_eq!(steps, [2, 4, 6], "every 2nd step");
        let epochs: Vec<&serde_json::Value> = rows.iter().filter(|r| r["kind"] == "epoch").collect();
        assert_eq!(epochs.len(), 2);
        assert_eq!(epochs[0]["val_accuracy"].as_f64().unwrap(), 0.4);
        assert_eq!(epochs[0]["samples_per_s"].as_f64().unwrap(), 10.0);
        assert!(epochs[1]["val_loss"].is_null());
        assert_eq!(rows[0]["lr"].as_f64().unwrap(), 0.1);
    }

    #[test]
    fn every_zero_keeps_epochs_only() {
        let text = write(&temp("epochs.csv"), 0);
        assert_eq!(text.lines().count(), 3);
        assert!(text.lines().skip(1).all(|l| l.starts_with("epoch,")));
    }

    #[test]
    fn an_unknown_extension_or_metric_is_an_error_naming_the_file() {
        let err = MetricsLog::create(Path::new("run/metrics.txt"), 1).err().unwrap();
        assert_eq!(err.to_string(), "the metrics log `run/metrics.txt` must end in `.csv` or `.jsonl`");
        let path = temp("unknown.csv");
        let mut log = MetricsLog::create(&path, 1).unwrap();
        log.start(&fixture::plan(1, 1)).unwrap();
        let (_, mut history) = fixture::run(1, 1);
        history[0].val.0.push(("top5_accuracy".into(), 1.0));
        let err = log.epoch(&history[0]).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("has no column `val_top5_accuracy`"), "{err}");
    }

    #[test]
    fn a_resumed_log_drops_the_test_row_of_the_run_it_continues() {
        let text = "kind,epoch,step,loss,test_loss\nstep,1,1,0.5,\nepoch,1,1,,\nstep,2,2,0.4,\nepoch,2,2,,\ntest,2,2,,0.45\n";
        let kept = earlier_rows(text, Format::Csv, 2, 2);
        assert_eq!(
            kept,
            [
                "kind,epoch,step,loss,test_loss",
                "step,1,1,0.5,",
                "epoch,1,1,,",
                "step,2,2,0.4,",
                "epoch,2,2,,"
            ]
        );
    }
}
