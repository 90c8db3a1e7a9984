//! The progress a person watches: on a terminal, an indicatif bar per epoch over its steps
//! (epoch i/n, running loss, last validation figures, learning rate, samples/s, ETA); at each
//! epoch's end a one-line summary that stays. When stderr is not a terminal (CI logs, pipes)
//! only the summary lines are written, as plain text.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::text::{figure_items, figures, lr, rate, seconds};
use super::{EpochRecord, Metrics, Observer, Plan, StepRecord};

enum Mode {
    /// A bar on stderr, redrawn in place; summary lines go to the output between bars.
    Bar(Option<ProgressBar>),
    /// The summary lines only.
    Lines,
    /// Nothing at all (`--format json` prints its own object).
    Quiet,
}

/// What the running epoch has seen so far.
#[derive(Default)]
struct Running {
    epoch: usize,
    steps: u64,
    samples: usize,
    /// Sum of step losses weighted by their samples.
    loss_sum: f64,
    /// Seconds since the run started when the epoch's first step began.
    started_s: f64,
}

/// Progress on stderr (or any writer, for tests); see the module docs.
pub struct Progress {
    mode: Mode,
    out: Box<dyn Write>,
    plan: Option<Plan>,
    running: Running,
    last_val: Metrics,
    /// When the last epoch ended, in seconds since the run started.
    last_end_s: f64,
}

impl Progress {
    /// A bar when stderr is a terminal, plain per-epoch lines when it is not.
    pub fn stderr() -> Progress {
        let mode = if std::io::stderr().is_terminal() { Mode::Bar(None) } else { Mode::Lines };
        Progress::with(mode, Box::new(std::io::stderr()))
    }

    /// The per-epoch lines only, written to `out`.
    pub fn lines(out: Box<dyn Write>) -> Progress {
        Progress::with(Mode::Lines, out)
    }

    /// No output at all.
    pub fn quiet() -> Progress {
        Progress::with(Mode::Quiet, Box::new(std::io::sink()))
    }

    fn with(mode: Mode, out: Box<dyn Write>) -> Progress {
        Progress {
            mode,
            out,
            plan: None,
            running: Running::default(),
            last_val: Metrics::default(),
            last_end_s: 0.0,
        }
    }

    fn new_bar(&self, epoch: usize) -> ProgressBar {
        let len = self.plan.as_ref().map(|p| p.steps_per_epoch as u64);
        let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix} {bar:16.cyan/blue} {pos:>4}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(epoch_label(self.plan.as_ref(), epoch));
        bar
    }
}

impl Observer for Progress {
    fn start(&mut self, plan: &Plan) -> std::io::Result<()> {
        self.plan = Some(plan.clone());
        Ok(())
    }

    /// Earlier epochs were shown by the earlier run.
    fn resumed(&mut self, _history: &[EpochRecord]) -> std::io::Result<()> {
        Ok(())
    }

    fn step(&mut self, record: &StepRecord) -> std::io::Result<()> {
        if matches!(self.mode, Mode::Quiet) {
            return Ok(());
        }
        if record.epoch != self.running.epoch {
            self.running = Running { epoch: record.epoch, started_s: self.last_end_s, ..Running::default() };
            if let Mode::Bar(old) = &self.mode {
                if let Some(old) = old {
                    old.abandon();
                }
                let bar = self.new_bar(record.epoch);
                self.mode = Mode::Bar(Some(bar));
            }
        }
        let r = &mut self.running;
        r.steps += 1;
        r.samples += record.samples;
        r.loss_sum += record.loss * record.samples as f64;
        if let Mode::Bar(Some(bar)) = &self.mode {
            bar.set_position(r.steps);
            bar.set_message(bar_message(self.plan.as_ref(), r, record, &self.last_val));
        }
        Ok(())
    }

    fn epoch(&mut self, record: &EpochRecord) -> std::io::Result<()> {
        if matches!(self.mode, Mode::Quiet) {
            return Ok(());
        }
        if let Mode::Bar(bar) = &mut self.mode {
            if let Some(bar) = bar.take() {
                bar.finish_and_clear();
            }
        }
        let took = record.elapsed_s - self.last_end_s;
        writeln!(self.out, "{}", epoch_line(self.plan.as_ref(), record, took))?;
        self.out.flush()?;
        self.last_val = record.val.clone();
        self.last_end_s = record.elapsed_s;
        self.running = Running::default();
        Ok(())
    }

    /// A run that ended mid-epoch (stopped or failed) leaves its bar where it stopped.
    fn finish(&mut self, _history: &[EpochRecord]) -> std::io::Result<()> {
        if let Mode::Bar(bar) = &mut self.mode {
            if let Some(bar) = bar.take() {
                bar.abandon();
            }
        }
        self.out.flush()
    }
}

/// `epoch  3/20`, padded so the lines of one run align; `epoch 3` without a plan.
fn epoch_label(plan: Option<&Plan>, epoch: usize) -> String {
    match plan {
        Some(p) => {
            let width = p.epochs.to_string().len();
            format!("epoch {epoch:>width$}/{}", p.epochs)
        }
        None => format!("epoch {epoch}"),
    }
}

/// The bar's text, most wanted first since a narrow terminal cuts the end: `loss 0.4123
/// eta 12.0s (run 4m10s)  lr 1.0e-3  1,234 samples/s  val loss 0.3985  accuracy 88.30%`. The
/// ETA assumes the steps to come take as long as this epoch's; the validation figures are the
/// last epoch's, also on the line above the bar.
fn bar_message(plan: Option<&Plan>, r: &Running, last: &StepRecord, last_val: &Metrics) -> String {
    let mut parts = vec![format!("loss {:.4}", r.loss_sum / r.samples.max(1) as f64)];
    let spent = last.elapsed_s - r.started_s;
    if let Some(p) = plan {
        let per_step = spent / r.steps.max(1) as f64;
        let left_here = (p.steps_per_epoch as u64).saturating_sub(r.steps);
        let left_after = (p.epochs.saturating_sub(r.epoch) * p.steps_per_epoch) as u64;
        let mut eta = format!("eta {}", seconds(per_step * left_here as f64));
        if left_after > 0 {
            eta.push_str(&format!(" (run {})", seconds(per_step * (left_here + left_after) as f64)));
        }
        parts.push(eta);
    }
    parts.push(format!("lr {}", lr(last.lr)));
    parts.push(format!("{} samples/s", rate(r.samples as f64 / spent)));
    if !last_val.0.is_empty() {
        parts.push(format!("val {}", figures(last_val)));
    }
    parts.join("  ")
}

/// Progress lines fit a terminal this wide.
const WIDTH: usize = 80;

/// The line that stays after each epoch; where it would not fit [`WIDTH`] columns, a head line
/// (epoch, rate, speed, time) and the figures of each split below it, wrapped.
fn epoch_line(plan: Option<&Plan>, r: &EpochRecord, took_s: f64) -> String {
    let label = epoch_label(plan, r.epoch);
    let tail = [format!("lr {}", lr(r.lr)), format!("{} samples/s", rate(r.samples_per_s)), seconds(took_s)];
    let mut splits = vec![("train", &r.train)];
    if !r.val.0.is_empty() {
        splits.push(("val", &r.val));
    }
    let one: Vec<String> = std::iter::once(label.clone())
        .chain(splits.iter().map(|(name, m)| format!("{name} {}", figures(m))))
        .chain(tail.iter().cloned())
        .collect();
    let one = one.join(" | ");
    if one.chars().count() <= WIDTH {
        return one;
    }
    let mut lines = vec![std::iter::once(label).chain(tail).collect::<Vec<_>>().join(" | ")];
    for (name, m) in splits {
        lines.extend(wrap(&format!("  {name:<6}"), figure_items(m).into_iter()));
    }
    lines.join("\n")
}

/// `items` after `lead`, two spaces apart, in lines of at most [`WIDTH`] columns (an item
/// longer than a line gets one of its own); the lines after the first are indented as far.
fn wrap(lead: &str, items: impl Iterator<Item = String>) -> Vec<String> {
    let indent = " ".repeat(lead.chars().count());
    let (mut lines, mut line, mut empty) = (Vec::new(), lead.to_string(), true);
    for item in items {
        if !empty && line.chars().count() + 2 + item.chars().count() > WIDTH {
            lines.push(std::mem::replace(&mut line, indent.clone()));
            empty = true;
        }
        if !empty {
            line.push_str("  ");
        }
        line.push_str(&item);
        empty = false;
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A writer the test can still read after handing it to the observer.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn replay(progress: &mut Progress, epochs: usize, steps_per_epoch: usize) {
        let (steps, history) = fixture::run(epochs, steps_per_epoch);
        progress.start(&fixture::plan(epochs, steps_per_epoch)).unwrap();
        for e in &history {
            for s in steps.iter().filter(|s| s.epoch == e.epoch) {
                progress.step(s).unwrap();
            }
            progress.epoch(e).unwrap();
        }
        progress.finish(&history).unwrap();
    }

    #[test]
    fn without_a_terminal_each_epoch_is_one_plain_line() {
        let buf = Shared::default();
        let mut progress = Progress::lines(Box::new(buf.clone()));
        replay(&mut progress, 12, 3);
        let text = String::from_utf8(buf.0.borrow().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(!text.contains('\x1b') && !text.contains('\r'), "escape codes in {text:?}");
        // Too wide for one line of 80 columns: a head, then each split's figures.
        assert_eq!(lines.len(), 36, "{text}");
        assert_eq!(
            lines[3..6],
            [
                "epoch  2/12 | lr 1.0e-1 | 10.0 samples/s | 3.0s",
                "  train loss 0.5000  accuracy 75.00%",
                "  val   loss 0.6000  accuracy 70.00%",
            ]
        );
        assert!(lines[33].starts_with("epoch 12/12 | "));
        assert!(lines.iter().all(|l| l.chars().count() <= WIDTH), "{text}");
    }

    #[test]
    fn quiet_progress_writes_nothing() {
        let mut progress = Progress::quiet();
        replay(&mut progress, 2, 2);
        assert!(matches!(progress.mode, Mode::Quiet));
        assert_eq!(progress.running.steps, 0);
    }

    #[test]
    fn the_bar_shows_running_loss_last_validation_rate_and_eta() {
        let plan = fixture::plan(4, 10);
        let (steps, history) = fixture::run(4, 10);
        // Two steps into epoch 2, which began when epoch 1 ended at 10 s.
        let r = Running { epoch: 2, steps: 2, samples: 20, loss_sum: 10.0 * (0.2 + 0.25), started_s: 10.0 };
        let msg = bar_message(Some(&plan), &r, &steps[11], &history[0].val);
        assert_eq!(
            msg,
            "loss 0.2250  eta 8.0s (run 28.0s)  lr 1.0e-1  10.0 samples/s  val loss 1.2000  accuracy 40.00%"
        );
    }

    #[test]
    fn an_epoch_without_validation_leaves_the_val_part_out() {
        let (_, mut history) = fixture::run(1, 1);
        history[0].val = Metrics::default();
        let line = epoch_line(None, &history[0], 1.0);
        assert_eq!(line, "epoch 1 | train loss 1.0000  accuracy 50.00% | lr 1.0e-1 | 10.0 samples/s | 1.0s");
    }

    #[test]
    fn many_figures_wrap_at_eighty_columns() {
        let names = ["loss", "logits_loss", "logits_accuracy", "logits_top5_accuracy", "box_loss", "box_l1"];
        let wide = Metrics(names.iter().map(|n| (n.to_string(), 0.5)).collect());
        let lines = wrap("  train ", figure_items(&wide).into_iter());
        assert_eq!(
            lines,
            [
                "  train loss 0.5000  logits_loss 0.5000  logits_accuracy 50.00%",
                "        logits_top5_accuracy 50.00%  box_loss 0.5000  box_l1 0.5000",
            ]
        );
    }
}
