//! A run's settings written into its configuration as written (so the reader that checks a
//! `train` section checks them, key by key, with the same messages), and a configuration
//! written back out as a `train` section to paste.

use crate::front::ast::{ConfigKind, ConfigValue, Ident};
use crate::front::is_word;

/// Set the value at `path` (`batch_size`, `optimizer.lr`, `schedule.warmup`; a number steps
/// into a list) to `text`, read as if it had been typed there unquoted. Sections on the way
/// that are missing are added; one written as a bare name (`optimizer: adam`) becomes the
/// mapping it stands for (`{name: adam}`).
pub fn set(root: &mut ConfigValue, path: &str, text: &str) -> Result<(), String> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(format!("`{path}` is not a key: expected names joined by dots (`optimizer.lr`)"));
    }
    let mut node = root;
    for (depth, segment) in segments.iter().enumerate() {
        let span = node.span;
        let within = segments[..depth].join(".");
        if let Some((name, quoted)) = bare_name(&node.kind) {
            let name = ConfigValue { kind: ConfigKind::Scalar { text: name.clone(), quoted: *quoted }, span };
            node.kind = ConfigKind::Map(vec![(Ident { name: "name".into(), span }, name)]);
        }
        if node.kind == ConfigKind::Null {
            node.kind = ConfigKind::Map(Vec::new());
        }
        node = match &mut node.kind {
            ConfigKind::Map(entries) => {
                let at = match entries.iter().position(|(k, _)| k.name == *segment) {
                    Some(at) => at,
                    None => {
                        let empty = ConfigValue { kind: ConfigKind::Null, span };
                        entries.push((Ident { name: segment.to_string(), span }, empty));
                        entries.len() - 1
                    }
                };
                &mut entries[at].1
            }
            ConfigKind::List(items) => {
                let len = items.len();
                match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(item) => item,
                    None => {
                        return Err(format!(
                            "`{within}` is a list of {len}: `{segment}` is not one of its indices (0 to {})",
                            len.saturating_sub(1)
                        ))
                    }
                }
            }
            _ => return Err(format!("`{within}` holds a value, not a section")),
        };
    }
    node.kind = ConfigKind::Scalar { text: text.to_string(), quoted: false };
    Ok(())
}

/// A scalar that names a section's kind (`adam`, `cosine`): a word, not a number or a truth
/// value.
fn bare_name(kind: &ConfigKind) -> Option<(&String, &bool)> {
    match kind {
        ConfigKind::Scalar { text, quoted }
            if text.starts_with(|c: char| c.is_ascii_alphabetic())
                && !["true", "false"].contains(&text.as_str()) =>
        {
            Some((text, quoted))
        }
        _ => None,
    }
}

/// Where the section will be pasted, which decides how it is introduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// A `.wick` spec: `train { ... }`.
    Wick,
    /// A YAML spec: `train:` then its keys.
    YamlSpec,
    /// A `--config` file: its keys alone.
    ConfigFile,
}

/// `value` (a mapping) as a `train` section: a line per key, nested values in flow style
/// (`{name: adam, lr: 0.003}`), which both surfaces read.
pub fn render_section(value: &ConfigValue, surface: Surface) -> String {
    let entries = match &value.kind {
        ConfigKind::Map(entries) => entries.as_slice(),
        _ => &[],
    };
    let lines = entries.iter().map(|(k, v)| format!("{}: {}", key(&k.name), flow(v)));
    match surface {
        Surface::Wick => {
            let body: String = lines.map(|l| format!("    {l}\n")).collect();
            format!("train {{\n{body}}}\n")
        }
        Surface::YamlSpec => format!("train:\n{}", lines.map(|l| format!("  {l}\n")).collect::<String>()),
        Surface::ConfigFile => lines.map(|l| format!("{l}\n")).collect(),
    }
}

fn flow(value: &ConfigValue) -> String {
    match &value.kind {
        ConfigKind::Map(entries) => {
            let inner: Vec<String> =
                entries.iter().map(|(k, v)| format!("{}: {}", key(&k.name), flow(v))).collect();
            format!("{{ {} }}", inner.join(", "))
        }
        ConfigKind::List(items) => format!("[{}]", items.iter().map(flow).collect::<Vec<_>>().join(", ")),
        ConfigKind::Scalar { text, quoted: false } if reads_bare(text) => text.clone(),
        ConfigKind::Scalar { text, .. } => quote(text),
        ConfigKind::Null => "null".into(),
    }
}

/// A key as both surfaces read it back: bare when it is a word, else quoted (a glob such as
/// `**.bias` under `init_weights`; in YAML a bare `*` would start an alias).
fn key(name: &str) -> String {
    if is_word(name) {
        name.to_string()
    } else {
        quote(name)
    }
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether an unquoted value reads back as itself without quotes in both surfaces: a number,
/// a word (`adam`, `true`) or a scheme call on one line (`normal(0, 0.02)`). Anything else (a
/// path given with `--set out=runs/a`) is printed quoted, which reads as the same string.
fn reads_bare(text: &str) -> bool {
    let call = text.split_once('(').is_some_and(|(name, rest)| {
        is_word(name) && rest.ends_with(')') && !rest[..rest.len() - 1].contains(['(', ')', '\n', '#'])
    });
    is_word(text) || text.parse::<f64>().is_ok_and(f64::is_finite) || call
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::span::SourceMap;

    fn section(text: &str) -> ConfigValue {
        let mut sources = SourceMap::new();
        let id = sources.add("t.yaml", None, text.to_string());
        crate::front::yaml::parse_config(text, id).unwrap()
    }

    #[test]
    fn settings_land_at_their_path_adding_what_is_missing() {
        let mut v = section("data: {csv: \"a b.csv\", target: y}\noptimizer: sgd\nbatch_size: 8\nparam_groups: [{params: [x], lr: 1}]\n");
        set(&mut v, "batch_size", "32").unwrap();
        set(&mut v, "optimizer.lr", "0.003").unwrap();
        set(&mut v, "early_stopping.patience", "3").unwrap();
        set(&mut v, "param_groups.0.lr", "0.5").unwrap();
        let yaml = render_section(&v, Surface::ConfigFile);
        assert_eq!(
            yaml,
            "data: { csv: \"a b.csv\", target: y }\noptimizer: { name: sgd, lr: 0.003 }\nbatch_size: 32\n\
             param_groups: [{ params: [x], lr: 0.5 }]\nearly_stopping: { patience: 3 }\n"
        );
        // What is printed reads back as the same values.
        assert_eq!(render_section(&section(&yaml), Surface::ConfigFile), yaml);
        assert!(render_section(&v, Surface::Wick).starts_with("train {\n    data: {"));
        assert!(render_section(&v, Surface::YamlSpec).starts_with("train:\n  data: {"));
    }

    #[test]
    fn glob_keys_and_values_that_are_not_words_print_quoted() {
        let mut v = section("init_weights: {\"**.bias\": zeros, \"**.weight\": \"normal(0, 0.02)\"}\n");
        set(&mut v, "out", "runs/a b").unwrap();
        set(&mut v, "lr", "3e-3").unwrap();
        let text = render_section(&v, Surface::ConfigFile);
        assert_eq!(
            text,
            "init_weights: { \"**.bias\": zeros, \"**.weight\": \"normal(0, 0.02)\" }\nout: \"runs/a b\"\nlr: 3e-3\n"
        );
        assert_eq!(render_section(&section(&text), Surface::ConfigFile), text);
        // The .wick surface reads it back too.
        let spec =
            format!("model M {{\n input x: [1, 4]\n output x\n}}\n{}", render_section(&v, Surface::Wick));
        assert!(
            crate::front::dsl::parse_file_with_pest(&spec, crate::front::span::FileId(0)).is_ok(),
            "{spec}"
        );
    }

    #[test]
    fn a_path_through_a_value_or_past_a_list_is_refused() {
        let mut v = section("batch_size: 8\nparam_groups: [{params: [x]}]\n");
        assert!(set(&mut v, "batch_size.x", "1").unwrap_err().contains("`batch_size` holds a value"));
        assert!(set(&mut v, "param_groups.3.lr", "1").unwrap_err().contains("list of 1"));
        assert!(set(&mut v, "optimizer..lr", "1").unwrap_err().contains("names joined by dots"));
    }
}
