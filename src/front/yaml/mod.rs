//! The YAML surface: the same [`Module`] as `.wick` text, written as YAML. Each line's `.wick`
//! equivalent is in the comment beside it.
//!
//! ```yaml
//! use: [std/resnet.wick]          # use "std/resnet.wick"                 (optional: a list of paths)
//! dims:                           # (optional: name -> example, or null for none)
//!   N: 1                          # dim N = 1
//! blocks:                         # (optional: name -> block)
//!   SqueezeExcite:                # block SqueezeExcite(
//!     params:                     #   (in order: name -> "type" or "type = default")
//!       x: "[N, c, h, w]"         #   x: [N, c, h, w],
//!       r: int = 16               #   r: int = 16
//!     returns: "[N, c, h, w]"     # ) -> [N, c, h, w] {                    (optional)
//!     body:
//!       - assert: c % r == 0      #   assert c % r == 0, "reduction {r} must divide channels {c}"
//!         message: "reduction {r} must divide channels {c}"
//!       - s: "x |> GlobalAvgPool |> Flatten |> fc1: Linear(c / r) |> ReLU |> fc2: Linear(c) |> Sigmoid"
//!       - return: x * reshape(s, [N, c, 1, 1])  #   return x * reshape(s, [N, c, 1, 1])
//! models:                         # (optional: name -> model: a block's keys but `returns`)
//!   SeedMLP:                      # model SeedMLP {
//!     body:
//!       - input: {x: "[N, 784]"}  #   input x: [N, 784]                    (more keys: more inputs)
//!       - logits: >-              #   logits = x |> fc1: Linear(200) |> ReLU |> fc2: Linear(10)
//!           x |> fc1: Linear(200) |> ReLU
//!             |> fc2: Linear(10)
//!       - output: {logits: "[N, 10]"}  # output logits: [N, 10]
//! ```
//!
//! A body is a list of one-key mappings: `input`, `output`, `return` and `assert` (with an
//! optional `message` beside it) are statements; any other key binds names (`h, c: expr` is
//! `h, c = expr`), and a bare scalar is an expression statement. `output` takes a name, a list
//! of names, or a mapping from names to type assertions (null: none); bind a value before
//! outputting it. Expressions, types and defaults are `.wick` text in YAML scalars, and a type
//! may also be a YAML list of dims (`[N, 784]`). YAML reads `[` opening a scalar as a list and
//! `: ` inside one as a key, so quote `"[N, c]"` types that carry `= default` or `of dtype`, and
//! labelled pipes, or write them as block scalars (`>-`).
//!
//! Spans are exact wherever the `.wick` text stands in the file as written (plain, quoted
//! without escapes, block scalars); otherwise every node of that scalar points at the scalar.
//! Keys are strict: anything unexpected is an `E0104` naming what is accepted there.

// The signature `parse` dispatches to returns a whole `Diagnostic`, as the `.wick` parser does.
#![allow(clippy::result_large_err)]

mod map;
mod respan;
mod tree;

use super::ast::{ConfigKind, ConfigValue, Ident, Module};
use super::span::{FileId, Span};
use crate::diag::Diagnostic;
use tree::Cx;

/// Deepest YAML nesting accepted; deeper input is refused as it streams in.
pub const MAX_DEPTH: usize = 64;

/// A YAML node and the span of its text.
struct Node {
    kind: Kind,
    span: Span,
}

enum Kind {
    /// `raw`: the byte range holding text equivalent to `value` as `.wick` (same characters,
    /// whitespace runs for whitespace runs), when there is one.
    Scalar {
        value: String,
        raw: Option<(usize, usize)>,
        null: bool,
        /// Unquoted and not a block scalar: may read as a number or a boolean.
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The node as a configuration value; keys keep their spans.
    fn config(&self) -> ConfigValue {
        let kind = match &self.kind {
            Kind::Scalar { null: true, .. } => ConfigKind::Null,
            Kind::Scalar { value, plain, .. } => ConfigKind::Scalar { text: value.clone(), quoted: !plain },
            Kind::Seq(items) => ConfigKind::List(items.iter().map(Node::config).collect()),
            Kind::Map(entries) => ConfigKind::Map(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let name = match &k.kind {
                            Kind::Scalar { value, .. } => value.clone(),
                            _ => String::new(),
                        };
                        (Ident { name, span: k.span }, v.config())
                    })
                    .collect(),
            ),
        };
        ConfigValue { kind, span: self.span }
    }
}

/// Parse a YAML configuration file (`wick train --config`) into spanned values.
pub fn parse_config(text: &str, file: FileId) -> Result<ConfigValue, Diagnostic> {
    let cx = Cx { text, file };
    Ok(match cx.load()? {
        Some(root) => root.config(),
        None => ConfigValue { kind: ConfigKind::Null, span: Span::new(file, 0, 0) },
    })
}

/// Parse a whole YAML spec.
pub fn parse_file(text: &str, file: FileId) -> Result<Module, Diagnostic> {
    let cx = Cx { text, file };
    match cx.load()? {
        Some(root) => cx.module(&root),
        None => Ok(Module { items: Vec::new(), file }),
    }
}

#[cfg(test)]
mod tests {
    use super::respan::{respan_expr, respan_param, respan_stmt, respan_type};
    use super::*;
    use crate::front::ast::*;
    use crate::front::dsl;
    use crate::{compile_source, Compiled};

    fn compile(text: &str) -> Compiled {
        compile_source("x.yaml", text, &Default::default())
    }

    /// `file:line:col` and code of the first diagnostic.
    fn first_error(text: &str) -> (String, &'static str, Diagnostic) {
        let c = compile(text);
        let d = c.diagnostics.items.first().cloned().unwrap_or_else(|| Diagnostic::error("none", "no error"));
        let at = d.primary.as_ref().map(|l| c.sources.location(l.span)).unwrap_or_default();
        (at, d.code, d)
    }

    fn strip(module: &mut Module) -> String {
        let s = Span::default();
        for item in &mut module.items {
            match item {
                Item::Use { span, .. } => *span = s,
                Item::Train(_) => {}
                Item::Dim { name, example } => {
                    name.span = s;
                    example.iter_mut().for_each(|e| respan_expr(e, s));
                }
                Item::Def(d) => {
                    (d.span, d.name.span) = (s, s);
                    d.params.iter_mut().for_each(|p| respan_param(p, s));
                    d.returns.iter_mut().for_each(|t| respan_type(t, s));
                    d.body.iter_mut().for_each(|st| respan_stmt(st, s));
                }
            }
        }
        format!("{module:?}")
    }

    #[test]
    fn seed_mlp_matches_the_wick_spec() -> Result<(), Diagnostic> {
        let yaml = include_str!("../../../specs/seed_mlp.yaml");
        let wick = include_str!("../../../specs/seed_mlp.wick");
        let (mut a, mut b) = (parse_file(yaml, FileId(0))?, dsl::parse_file(wick, FileId(0))?);
        assert_eq!(strip(&mut a), strip(&mut b));
        let (a, b) = (compile(yaml), compile_source("x.wick", wick, &Default::default()));
        assert!(!a.diagnostics.has_errors(), "{}", a.render_diagnostics(crate::diag::RenderStyle::PLAIN));
        let json = |c: &Compiled| c.summary(None).ok().map(|s| crate::report::render_json(&s));
        assert_eq!(json(&a), json(&b));
        assert_eq!(a.summary(None).ok().map(|s| s.total_params), Some(185_235));
        Ok(())
    }

    #[test]
    fn every_form_maps_to_the_wick_ast() -> Result<(), Diagnostic> {
        let yaml = r#"
use: [lib.wick]
dims: {N: 1, C: null}
blocks:
  SE:
    params:
      x: "[N, c, h, w]"
      r: int = 16
    returns: [N, c, h, w]
    body:
      - assert: c % r == 0
        message: "{r} \"r\""
      - a, b: split(x, 2)
      - return: "x * reshape(s, [N, c, 1, 1]) |> \"q\""
models:
  M:
    params: {k: int = 3}
    body:
      - input: {x: "[N, 784] of f32", y: "[N, 4]"}
      - x |> Linear(3)
      - h: |
          if k > 1 { x |> ReLU }
          else { x }
      - output: [h, y]
"#;
        let wick = r#"use "lib.wick" dim N = 1 dim C
            block SE(x: [N, c, h, w], r: int = 16) -> [N, c, h, w] {
                assert c % r == 0, "{r} \"r\""
                a, b = split(x, 2)
                return x * reshape(s, [N, c, 1, 1]) |> "q"
            }
            model M(k: int = 3) {
                input x: [N, 784] of f32
                input y: [N, 4]
                x |> Linear(3)
                h = if k > 1 { x |> ReLU } else { x }
                output h, y
            }"#;
        let (mut a, mut b) = (parse_file(yaml, FileId(0))?, dsl::parse_file(wick, FileId(0))?);
        assert_eq!(strip(&mut a), strip(&mut b));
        Ok(())
    }

    #[test]
    fn the_module_doc_example_parses() -> Result<(), Diagnostic> {
        let doc = include_str!("mod.rs").lines().filter_map(|l| l.strip_prefix("//!"));
        let example: Vec<&str> = doc
            .skip_while(|l| *l != " ```yaml")
            .skip(1)
            .take_while(|l| *l != " ```")
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect();
        let module = parse_file(&example.join("\n"), FileId(0))?;
        assert_eq!(module.items.len(), 4);
        Ok(())
    }

    #[test]
    fn spans_point_into_the_yaml() {
        let spec = |stmt: &str| {
            let head = "dims: {N: 1}\nmodels:\n  M:\n    body:\n      - input:\n          x: \"[N, 4]\"";
            format!("{head}\n{stmt}\n      - output: y\n")
        };
        // Each case puts its culprit on line 7: (statement, location, code).
        let cases = [
            ("      - y: x |> Lienar(3)", "x.yaml:7:17", "E0202"),
            ("      - y: \"x |> fc: Linear(3) |> +\"", "x.yaml:7:35", "E0101"),
            ("      - y: >-\n          x |> fc: Linear(3)\n            |> )", "x.yaml:9:16", "E0101"),
            ("      - y: 'x |> fc: Linear(''3'') |> )'", "x.yaml:7:12", "E0101"),
            ("      - y, 3z: x", "x.yaml:7:12", "E0104"),
            ("      - y: x\n        typo: 1", "x.yaml:7:9", "E0104"),
        ];
        for (stmt, at, code) in cases {
            let (found, c, d) = first_error(&spec(stmt));
            assert_eq!((found.as_str(), c), (at, code), "{stmt}: {d:?}");
        }
    }

    #[test]
    fn unknown_keys_suggest_the_accepted_ones() {
        let (at, code, d) = first_error("dims: {N: 1}\nmodles:\n  M: {}\n");
        assert_eq!((at.as_str(), code), ("x.yaml:2:1", "E0104"));
        assert_eq!(d.help.as_deref(), Some("did you mean `models`?"));
        assert!(d.notes.iter().any(|n| n.contains("use, dims, blocks, models")), "{d:?}");
        let (at, _, d) = first_error("blocks:\n  B:\n    bdy: []\n");
        assert_eq!((at.as_str(), d.help.as_deref()), ("x.yaml:3:5", Some("did you mean `body`?")));
        let (at, _, d) = first_error("models:\n  M:\n    body:\n      - assert: true\n        mesage: hi\n");
        assert_eq!((at.as_str(), d.help.as_deref()), ("x.yaml:5:9", Some("did you mean `message`?")));
        let (_, _, d) = first_error("models:\n  M:\n    body:\n      - inpt: {x: \"[1]\"}\n");
        assert!(d.help.as_ref().is_some_and(|h| h.contains("`input`")), "{d:?}");
        let (_, _, d) = first_error("models: [M]\n");
        assert_eq!(d.message, "expected a mapping of names to definitions, found a list");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = |n: usize| format!("dims: {}{}", "[".repeat(n), "]".repeat(n));
        let d = parse_file(&deep(MAX_DEPTH - 1), FileId(0)).err();
        assert!(d.is_some_and(|d| d.message.starts_with("expected dims")));
        let d = parse_file(&deep(MAX_DEPTH), FileId(0)).err();
        assert!(d.is_some_and(|d| d.message.contains("deeper than 64")));
        assert!(parse_file(&deep(1_000_000), FileId(0)).is_err());
        assert!(parse_file(&"- ".repeat(100_000), FileId(0)).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let garbage =
            ["[[[{", "\t: - :", "", "a: *x", "a: 1\n---\nb: 2", "{a: 1, a: 2}", "\u{feff}é: [", "- ]"];
        for text in garbage {
            // An empty file is an empty module, as in `.wick`; compiling it finds no model.
            assert!(compile(text).diagnostics.has_errors(), "{text:?}");
        }
        assert_eq!(first_error("[[[{").0, "x.yaml:1:5");
        // Every prefix of a real spec, cut at any character, is handled.
        let yaml = include_str!("../../../specs/seed_mlp.yaml");
        for (i, _) in yaml.char_indices() {
            let _ = compile(&yaml[..i]);
        }
    }
}
