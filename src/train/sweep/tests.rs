use super::*;
use crate::front::span::SourceMap;

fn base() -> ConfigValue {
    let text = "data: {csv: \"iris.csv\", target: species}\noptimizer: {name: adam, lr: 0.01}\nepochs: 60\n";
    let mut sources = SourceMap::new();
    let id = sources.add("t.yaml", None, text.to_string());
    crate::front::yaml::parse_config(text, id).unwrap()
}

fn grid(axes: &[&str]) -> Search {
    Search { grid: axes.iter().map(|a| Axis::parse(a).unwrap()).collect(), ..Search::default() }
}

#[test]
fn each_trial_reads_as_the_configuration_with_its_settings() {
    let fixed = [("epochs".to_string(), "3".to_string())];
    let t = trials(&base(), &fixed, &grid(&["lr=1e-3,3e-3", "batch_size=32,64"])).unwrap();
    assert_eq!(t.len(), 4);
    assert_eq!(t[1].name, "2_lr=1e-3_batch_size=64");
    assert_eq!(
        (t[1].config.batch_size, *t[1].config.optimizer.clone().lr_mut(), t[1].config.epochs),
        (64, 1e-3, 3)
    );
    assert_eq!(*t[2].config.optimizer.clone().lr_mut(), 3e-3);
}

#[test]
fn bad_keys_and_values_are_refused_naming_the_setting_and_what_was_expected() {
    let err = |axes: &[&str]| trials(&base(), &[], &grid(axes)).unwrap_err();
    let e = err(&["batch_size=32,big"]);
    assert!(e.starts_with("--grid batch_size=big:") && e.contains("big"), "{e}");
    let e = err(&["epoch=3,5"]);
    assert!(e.contains("unknown key `epoch`") && e.contains("did you mean `epochs`?"), "{e}");
    let e = err(&["batch_size=0"]);
    assert!(e.contains("must be at least 1"), "{e}");
    let e = err(&["optimizer.name=adam,adamm"]);
    assert!(e.contains("adamm") && e.contains("sgd"), "{e}");
    let e = trials(&base(), &[("seed".into(), "-1".into())], &grid(&["lr=1"])).unwrap_err();
    assert!(e.starts_with("--set seed=-1:"), "{e}");
}

fn row(index: usize, value: Option<f64>, failed: bool) -> Row {
    let result = match failed {
        true => Err("no such file".to_string()),
        false => Ok(RunResult {
            value,
            epoch: 3,
            val: Metrics(vec![("loss".into(), value.unwrap_or(f64::NAN)), ("accuracy".into(), 0.5)]),
            epochs: 3,
            wall_s: 1.0,
            interrupted: false,
        }),
    };
    let settings = vec![("optimizer.lr".to_string(), format!("{index}"))];
    Row { index, name: format!("{index}"), settings, out: String::new(), result }
}

#[test]
fn rows_rank_by_the_monitor_in_its_direction_with_failures_last() {
    let rows =
        vec![row(1, Some(0.5), false), row(2, None, true), row(3, Some(0.2), false), row(4, None, false)];
    let order = |r: &SweepReport| r.rows.iter().map(|r| r.index).collect::<Vec<_>>();
    let by_loss = SweepReport::ranked("val_loss".into(), 4, rows.clone());
    assert_eq!(order(&by_loss), [3, 1, 4, 2]);
    assert_eq!(by_loss.best().map(|r| r.index), Some(3));
    let by_accuracy = SweepReport::ranked("val_accuracy".into(), 4, rows);
    assert_eq!(order(&by_accuracy), [1, 3, 4, 2]);
    let table = by_loss.markdown();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "| rank | lr | val_loss | epoch | val_accuracy | time | run |");
    assert_eq!(lines[2], "| 1 | 3 | 0.2000 | 3 | 50.00% | 1.0s | 3 |");
    assert_eq!(lines[5], "| - | 2 | failed: no such file |  |  |  | 2 |");
}
