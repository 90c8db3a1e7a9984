//! CSV tables: a header row, then one example a line; feature columns become `[N, F]` f32, the
//! target column class indices (i64) or values (f32).

use std::path::Path;

use candle_core::{Device, Tensor};

use super::config::Target;
use super::convert::{assemble, Named, Raw};
use super::{DataError, Dataset};
use crate::train::files;

impl Dataset {
    /// A CSV file with a header row: every column but `target` is a feature (f32); `target`
    /// holds class indices.
    pub fn from_csv(path: &Path, target: &str, device: &Device) -> Result<Dataset, DataError> {
        let (raw, _) = read(path, &[], Some(target), Target::Classes, None)?;
        let d = assemble(raw, None, None, Target::Classes)?;
        Ok(Dataset::new(d.x.to_device(device)?, d.y.to_device(device)?))
    }
}

/// Reads `path`. `features` empty: every column but the target; `target` `None`: no target
/// column (the targets are the features).
///
/// Class labels are indices (`0`, `1`, ...) or, when the first row's is not a number, names
/// (`setosa`, `A`): each name becomes its index among `classes` (the training data's), or
/// with none given, among the file's names sorted; the names are returned.
pub(super) fn read(
    path: &Path,
    features: &[String],
    target: Option<&str>,
    kind: Target,
    classes: Option<&[String]>,
) -> Result<(Raw, Option<Vec<String>>), DataError> {
    let shown = path.display().to_string();
    let bytes = files::read_regular(path).map_err(|source| DataError::Io { path: shown.clone(), source })?;
    let format = |line: usize, message: String| DataError::Format { path: shown.clone(), line, message };
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        format(line, format!("not UTF-8 text (byte {at}); expected a CSV table"))
    })?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) =
        lines.next().ok_or_else(|| format(1, "the file is empty; expected a header row".into()))?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    // A file that does not call itself a table (`/etc/passwd`, `/proc/self/environ`) may hold
    // anything: its messages say where, never what (no column name or cell of it is shown).
    let echo = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let column = |c: usize| if echo { format!("`{}`", columns[c]) } else { format!("{}", c + 1) };
    let cell = |text: &str| if echo { format!("`{text}` ") } else { "the value ".into() };
    let find = |name: &str| {
        columns.iter().position(|c| *c == name).ok_or_else(|| {
            let listed = match echo {
                true => format!("the columns are {}", columns.join(", ")),
                false => format!("it has {} (not shown: the file does not end in .csv)", columns.len()),
            };
            format(1, format!("no column `{name}`; {listed}"))
        })
    };
    let target_col = target.map(find).transpose()?;
    let feature_cols: Vec<usize> = if features.is_empty() {
        (0..columns.len()).filter(|c| Some(*c) != target_col).collect()
    } else {
        features.iter().map(|f| find(f)).collect::<Result<_, _>>()?
    };
    if let Some(t) = target_col.filter(|t| feature_cols.contains(t)) {
        return Err(format(1, format!("column `{}` is both a feature and the target", columns[t])));
    }
    if feature_cols.is_empty() {
        return Err(format(1, "no feature columns: the target is the only column".into()));
    }

    let (mut xs, mut labels, mut values) = (Vec::new(), Vec::new(), Vec::new());
    // Names as read, in row order, when the labels are names.
    let mut names: Option<Vec<(usize, String)>> = None;
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != columns.len() {
            return Err(format(i + 1, format!("expected {} columns, found {}", columns.len(), cells.len())));
        }
        let number = |c: usize| {
            cells[c].parse::<f32>().map_err(|_| {
                format(i + 1, format!("column {}: {}is not a number", column(c), cell(cells[c])))
            })
        };
        for c in &feature_cols {
            xs.push(number(*c)?);
        }
        match (target_col, kind) {
            (Some(c), Target::Classes) if names.is_some() || (labels.is_empty() && is_name(cells[c])) => {
                names.get_or_insert_with(Vec::new).push((i + 1, cells[c].to_string()));
            }
            (Some(c), Target::Classes) => labels.push(cells[c].parse::<i64>().map_err(|_| {
                format(
                    i + 1,
                    format!("column {}: {}is not a class index (0, 1, 2 ...)", column(c), cell(cells[c])),
                )
            })?),
            (Some(c), _) => values.push(number(c)?),
            (None, _) => {}
        }
    }
    let n = xs.len() / feature_cols.len();
    let named = match names {
        Some(names) => {
            let (indices, classes) = indices_of(&names, classes).map_err(|(line, m)| {
                format(line, if echo { m } else { "a class not among the training data's classes".into() })
            })?;
            labels = indices;
            Some(classes)
        }
        None => None,
    };
    let device = &Device::Cpu;
    let x = Named::new(format!("`{shown}`"), Tensor::from_vec(xs, (n, feature_cols.len()), device)?);
    let y = target_col
        .map(|c| -> Result<Named, DataError> {
            let t = if kind == Target::Classes {
                Tensor::from_vec(labels, n, device)?
            } else {
                Tensor::from_vec(values, n, device)?
            };
            Ok(Named::new(format!("`{shown}` column {}", column(c)), t))
        })
        .transpose()?;
    Ok((Raw { x, y }, named))
}

/// A label that reads as no number (`setosa`, not `2` or `-1.5`, which are wrong indices).
fn is_name(cell: &str) -> bool {
    cell.parse::<f64>().is_err()
}

/// Each name's index among `known`, or among the names sorted; and the names indexed. A name
/// not among `known` is an error at its line.
pub(super) fn indices_of(
    names: &[(usize, String)],
    known: Option<&[String]>,
) -> Result<(Vec<i64>, Vec<String>), (usize, String)> {
    let classes: Vec<String> = match known {
        Some(known) => known.to_vec(),
        None => {
            let set: std::collections::BTreeSet<&String> = names.iter().map(|(_, n)| n).collect();
            set.into_iter().cloned().collect()
        }
    };
    let indices = names
        .iter()
        .map(|(line, name)| {
            classes.iter().position(|c| c == name).map(|i| i as i64).ok_or_else(|| {
                let shown: Vec<&str> = classes.iter().take(20).map(String::as_str).collect();
                (
                    *line,
                    format!("class `{name}` is not among the training data's classes ({})", shown.join(", ")),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((indices, classes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::data::test_dir;

    fn digits() -> Raw {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits8x8.csv"));
        read(path, &[], Some("digit"), Target::Classes, None).expect("digits").0
    }

    #[test]
    fn a_file_that_is_not_named_csv_has_no_column_or_cell_shown() {
        let dir = test_dir("csv-secret");
        let path = dir.join("passwd");
        std::fs::write(&path, "root:x:0:0:root:/root:/bin/bash\nsecret:x:1\n").unwrap();
        let e = read(&path, &[], Some("species"), Target::Classes, None).unwrap_err().to_string();
        assert!(
            e.ends_with("no column `species`; it has 1 (not shown: the file does not end in .csv)"),
            "{e}"
        );
        let e = read(&path, &[], None, Target::Input, None).unwrap_err().to_string();
        assert!(
            e.ends_with("passwd:2: column 1: the value is not a number") && !e.contains("secret:"),
            "{e}"
        );
    }

    #[test]
    fn digits_read_as_1797_rows_of_64_pixels_and_10_classes() {
        let d = digits();
        assert_eq!(d.x.tensor.dims(), &[1797, 64]);
        let y: Vec<i64> = d.y.expect("labels").tensor.to_vec1().unwrap();
        assert_eq!(y.iter().max(), Some(&9));
        assert_eq!(y.len(), 1797);
    }

    #[test]
    fn chosen_columns_and_float_targets() {
        let dir = test_dir("csv-columns");
        let path = dir.join("t.csv");
        std::fs::write(&path, "id,a,b,price\n7,1,2,0.5\n8,3,4,1.5\n").unwrap();
        let names = ["b".to_string(), "a".to_string()];
        let raw = read(&path, &names, Some("price"), Target::Values, None).unwrap().0;
        assert_eq!(raw.x.tensor.to_vec2::<f32>().unwrap(), [[2., 1.], [4., 3.]]);
        assert_eq!(raw.y.unwrap().tensor.to_vec1::<f32>().unwrap(), [0.5, 1.5]);
        let raw = read(&path, &[], None, Target::Input, None).unwrap().0;
        assert_eq!(raw.x.tensor.dims(), &[2, 4]);
    }

    #[test]
    fn bad_files_name_the_line_and_column() {
        let dir = test_dir("csv-bad");
        let path = dir.join("bad.csv");
        std::fs::write(&path, "a,b,label\n1,2,0\n3,x,1\n4,5,0.5\n").unwrap();
        let err = |target: &str, kind| {
            read(&path, &[], Some(target), kind, None).expect_err("an error").to_string()
        };
        assert!(err("label", Target::Classes).ends_with("bad.csv:3: column `b`: `x` is not a number"));
        let e = err("class", Target::Classes);
        assert!(e.ends_with("bad.csv:1: no column `class`; the columns are a, b, label"), "{e}");
        std::fs::write(&path, "a,b,label\n1,2,0\n4,5,0.5\n").unwrap();
        let e = err("label", Target::Classes);
        assert!(e.ends_with("bad.csv:3: column `label`: `0.5` is not a class index (0, 1, 2 ...)"), "{e}");
        let e = read(&path, &["label".into()], Some("label"), Target::Classes, None).unwrap_err().to_string();
        assert!(e.ends_with("column `label` is both a feature and the target"), "{e}");
    }

    #[test]
    fn class_names_become_indices_in_sorted_order_or_the_training_datas() {
        let dir = test_dir("csv-names");
        let path = dir.join("t.csv");
        std::fs::write(&path, "a,label\n1,B\n2,A\n3,C\n4,B\n").unwrap();
        let (raw, names) = read(&path, &[], Some("label"), Target::Classes, None).unwrap();
        assert_eq!(names.unwrap(), ["A", "B", "C"]);
        assert_eq!(raw.y.unwrap().tensor.to_vec1::<i64>().unwrap(), [1, 0, 2, 1]);
        // A validation file maps by the training names, even when it lacks some.
        std::fs::write(&path, "a,label\n1,C\n2,C\n").unwrap();
        let known = ["A".to_string(), "B".into(), "C".into()];
        let (raw, _) = read(&path, &[], Some("label"), Target::Classes, Some(&known)).unwrap();
        assert_eq!(raw.y.unwrap().tensor.to_vec1::<i64>().unwrap(), [2, 2]);
        std::fs::write(&path, "a,label\n1,C\n2,D\n").unwrap();
        let e = read(&path, &[], Some("label"), Target::Classes, Some(&known)).unwrap_err().to_string();
        assert!(e.ends_with("t.csv:3: class `D` is not among the training data's classes (A, B, C)"), "{e}");
    }
}
