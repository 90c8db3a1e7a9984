//! The node tree mapped onto the spec AST: top-level keys, definitions, statements.

use super::respan::{respan_expr, respan_param, respan_type};
use super::tree::{is_ws, Cx};
use super::{Kind, Node};
use crate::diag::{did_you_mean, Diagnostic};
use crate::front::ast::*;
use crate::front::dsl;
use crate::front::span::{FileId, Span};

const TOP_KEYS: &[&str] = &["use", "dims", "blocks", "models", "train"];
const BLOCK_KEYS: &[&str] = &["params", "returns", "body"];
const MODEL_KEYS: &[&str] = &["params", "body"];
const ASSERT_KEYS: &[&str] = &["assert", "message"];
const STMT_KEYS: &[&str] = &["input", "output", "return", "assert"];

impl Cx<'_> {
    fn wrong(&self, node: &Node, expected: &str) -> Diagnostic {
        let found = match &node.kind {
            Kind::Scalar { null: true, .. } => "nothing".to_string(),
            Kind::Scalar { value, .. } if value.chars().count() <= 40 => format!("`{value}`"),
            Kind::Scalar { .. } => "a string".to_string(),
            Kind::Seq(_) => "a list".to_string(),
            Kind::Map(_) => "a mapping".to_string(),
        };
        Diagnostic::error("E0104", format!("expected {expected}, found {found}"))
            .at(node.span, format!("expected {expected}"))
    }

    /// A mapping's entries (none for null), every key a scalar and none repeated.
    fn entries<'n>(&self, node: &'n Node, what: &str) -> Result<&'n [(Node, Node)], Diagnostic> {
        let entries = match &node.kind {
            Kind::Map(entries) => entries.as_slice(),
            Kind::Scalar { null: true, .. } => &[],
            _ => return Err(self.wrong(node, what)),
        };
        let mut seen = std::collections::HashMap::new();
        for (key, _) in entries {
            if let Some(first) = seen.insert(self.text_of(key, "a key")?, key.span) {
                let msg = format!("duplicate key `{}`", self.text_of(key, "a key")?);
                return Err(self.error(key.span, msg, "repeated here").also(first, "first here"));
            }
        }
        Ok(entries)
    }

    /// A mapping whose keys must come from `accepted`.
    fn fields<'n>(&self, node: &'n Node, what: &str, accepted: &[&str]) -> Result<Fields<'n>, Diagnostic> {
        let entries = self.entries(node, &format!("{what} (a mapping)"))?;
        for (key, _) in entries {
            let name = self.text_of(key, "a key")?;
            if !accepted.contains(&name) {
                let mut d = self.error(key.span, format!("unknown key `{name}` in {what}"), "unknown key");
                if let Some(close) = did_you_mean(name, accepted.iter().copied()) {
                    d = d.help(format!("did you mean `{close}`?"));
                }
                return Err(d.note(format!("{what} takes: {}", accepted.join(", "))));
            }
        }
        Ok(Fields(entries))
    }

    /// A scalar's text; null and collections are errors.
    fn text_of<'n>(&self, node: &'n Node, expected: &str) -> Result<&'n str, Diagnostic> {
        match &node.kind {
            Kind::Scalar { value, null: false, .. } => Ok(value),
            _ => Err(self.wrong(node, expected)),
        }
    }

    /// Parse `.wick` text held in a scalar, after `prefix`: from the file where it stands
    /// there (exact spans), else from the YAML value with every span moved onto the scalar.
    fn fragment<T>(
        &self,
        node: &Node,
        expected: &str,
        prefix: &str,
        parse: fn(&str, FileId, usize) -> Result<T, Diagnostic>,
        respan: fn(&mut T, Span),
    ) -> Result<T, Diagnostic> {
        let value = self.text_of(node, expected)?;
        let mut first_error = None;
        if let Kind::Scalar { raw: Some((start, end)), .. } = node.kind {
            let raw = self.text.get(start..end).unwrap_or("");
            if let Some(base) = start.checked_sub(prefix.len()) {
                match parse(&format!("{prefix}{raw}"), self.file, base) {
                    Ok(t) => return Ok(t),
                    // Folded text can break a string literal across lines; the value may still parse.
                    Err(e) if raw != value.trim_matches(is_ws) => first_error = Some(e),
                    Err(e) => return Err(e),
                }
            }
        }
        match parse(&format!("{prefix}{value}"), self.file, 0) {
            Ok(mut t) => {
                respan(&mut t, node.span);
                Ok(t)
            }
            Err(mut e) => Err(first_error.unwrap_or_else(|| {
                e.primary.iter_mut().chain(&mut e.secondary).for_each(|l| l.span = node.span);
                e
            })),
        }
    }

    fn expr(&self, node: &Node) -> Result<Expr, Diagnostic> {
        // Most scalars in a spec are plain numbers (dims, sizes): read them without the parser,
        // whose setup costs far more than the number.
        if let Kind::Scalar { value, raw: Some(_), plain: true, .. } = &node.kind {
            if let Some(v) =
                value.bytes().all(|b| b.is_ascii_digit()).then(|| value.parse::<i64>().ok()).flatten()
            {
                return Ok(Expr { kind: ExprKind::Int(v), span: node.span });
            }
        }
        self.fragment(node, "an expression", "", dsl::parse_expr, respan_expr)
    }

    /// A type: `.wick` text, or a YAML list of dims.
    fn ty(&self, node: &Node) -> Result<TypeExpr, Diagnostic> {
        if let Kind::Seq(items) = &node.kind {
            let dims = items.iter().map(|d| self.expr(d)).collect::<Result<_, _>>()?;
            return Ok(TypeExpr { kind: TypeKind::Tensor { dims, dtype: None }, span: node.span });
        }
        self.fragment(node, "a type", "", dsl::parse_type, respan_type)
    }

    fn tensor(&self, node: &Node) -> Result<TypeExpr, Diagnostic> {
        let ty = self.ty(node)?;
        match ty.kind {
            TypeKind::Tensor { .. } => Ok(ty),
            _ => Err(self.error(ty.span, "expected a tensor type (`[N, 784]`)", "not a tensor type")),
        }
    }

    /// Comma-separated names in one scalar (`h, c`), each checked by the `.wick` grammar.
    fn names(&self, node: &Node) -> Result<Vec<Ident>, Diagnostic> {
        let value = self.text_of(node, "a name")?;
        // Offsets within the value are offsets in the file only when the scalar is verbatim.
        let base = match node.kind {
            Kind::Scalar { raw: Some((start, end)), .. } if self.text.get(start..end) == Some(value) => {
                Some(start)
            }
            _ => None,
        };
        let mut offset = 0;
        let mut names = Vec::new();
        for piece in value.split(',') {
            let name = piece.trim_matches(is_ws);
            let at = offset + piece.len() - piece.trim_start_matches(is_ws).len();
            offset += piece.len() + 1;
            let span = base.map_or(node.span, |b| Span::new(self.file, b + at, b + at + name.len()));
            match dsl::parse_expr(name, self.file, 0) {
                Ok(Expr { kind: ExprKind::Name(n), .. }) if n == name => names.push(Ident { name: n, span }),
                _ => {
                    return Err(self.error(span, format!("`{name}` is not a valid name"), "expected a name"))
                }
            }
        }
        Ok(names)
    }

    fn name(&self, node: &Node) -> Result<Ident, Diagnostic> {
        let mut names = self.names(node)?;
        match names.pop() {
            Some(name) if names.is_empty() => Ok(name),
            _ => Err(self.wrong(node, "one name")),
        }
    }

    pub(super) fn module(&self, root: &Node) -> Result<Module, Diagnostic> {
        let top = self.fields(root, "a spec", TOP_KEYS)?;
        let mut items = Vec::new();
        if let Some(uses) = top.get("use") {
            let paths = match &uses.kind {
                Kind::Seq(paths) => paths.iter().collect(),
                Kind::Scalar { null: true, .. } => vec![],
                _ => vec![uses],
            };
            for p in paths {
                items.push(Item::Use { path: self.text_of(p, "a file path")?.to_string(), span: p.span });
            }
        }
        for (key, value) in top.entries(self, "dims", "dims (a mapping)")? {
            let example = match value.kind {
                Kind::Scalar { null: true, .. } => None,
                _ => Some(self.expr(value)?),
            };
            items.push(Item::Dim { name: self.name(key)?, example });
        }
        for (section, kind) in [("blocks", DefKind::Block), ("models", DefKind::Model)] {
            for (key, value) in top.entries(self, section, "a mapping of names to definitions")? {
                items.push(Item::Def(self.def(kind, key, value)?));
            }
        }
        if let Some(train) = top.get("train") {
            items.push(Item::Train(train.config()));
        }
        Ok(Module { items, file: self.file })
    }

    fn def(&self, kind: DefKind, key: &Node, value: &Node) -> Result<Def, Diagnostic> {
        let name = self.name(key)?;
        let fields = match kind {
            DefKind::Block => self.fields(value, "a block", BLOCK_KEYS)?,
            DefKind::Model => self.fields(value, "a model", MODEL_KEYS)?,
        };
        let mut params = Vec::new();
        for (param, ty) in fields.entries(self, "params", "params (a mapping of names to types)")? {
            let name = self.name(param)?;
            let (ty, default) = match ty.kind {
                Kind::Seq(_) => (self.ty(ty)?, None),
                // `p:` stands in for the name so the `.wick` param rule reads `type = default`.
                _ => {
                    let p = self.fragment(ty, "a type", "p:", dsl::parse_param, respan_param)?;
                    (p.ty, p.default)
                }
            };
            params.push(Param { name, ty, default });
        }
        let returns = fields.get("returns").map(|r| self.ty(r)).transpose()?;
        let mut body = Vec::new();
        let stmts = match fields.get("body").map(|b| (b, &b.kind)) {
            Some((_, Kind::Seq(stmts))) => stmts.as_slice(),
            Some((_, Kind::Scalar { null: true, .. })) | None => &[],
            Some((b, _)) => return Err(self.wrong(b, "a list of statements")),
        };
        for stmt in stmts {
            self.stmt(stmt, &mut body)?;
        }
        Ok(Def { kind, name, params, returns, body, span: key.span.to(value.span) })
    }

    fn stmt(&self, node: &Node, out: &mut Vec<Stmt>) -> Result<(), Diagnostic> {
        let entries = match &node.kind {
            Kind::Map(entries) => entries,
            Kind::Seq(_) => return Err(self.wrong(node, "a statement (`- name: expr`)")),
            Kind::Scalar { .. } => {
                out.push(Stmt::Expr(self.expr(node)?));
                return Ok(());
            }
        };
        let is_assert =
            |(k, _): &(Node, Node)| matches!(&k.kind, Kind::Scalar { value, .. } if value == "assert");
        if let Some((key, cond)) = entries.iter().find(|e| is_assert(e)) {
            let message = self.fields(node, "an assert statement", ASSERT_KEYS)?.get("message");
            let message =
                message.map(|m| Ok(StrLit { value: self.text_of(m, "a message")?.into(), span: m.span }));
            let message = message.transpose()?;
            out.push(Stmt::Assert { cond: self.expr(cond)?, message, span: key.span.to(cond.span) });
            return Ok(());
        }
        let [(key, value)] = entries.as_slice() else {
            let msg = format!("a statement has one key, found {}", entries.len());
            return Err(self
                .error(node.span, msg, "expected one key")
                .help("give each statement its own `- ` item"));
        };
        let span = key.span.to(value.span);
        match self.text_of(key, "a statement key")? {
            "input" => {
                for (name, ty) in self.entries(value, "input (a mapping of names to tensor types)")? {
                    out.push(Stmt::Input { name: self.name(name)?, ty: self.tensor(ty)? });
                }
            }
            "output" => {
                let item = |name, ty| OutputItem { name, ty, value: None };
                let items = match &value.kind {
                    Kind::Map(_) => self
                        .entries(value, "")?
                        .iter()
                        .map(|(n, t)| match t.kind {
                            Kind::Scalar { null: true, .. } => Ok(item(self.name(n)?, None)),
                            _ => Ok(item(self.name(n)?, Some(self.tensor(t)?))),
                        })
                        .collect::<Result<_, Diagnostic>>()?,
                    Kind::Seq(names) => {
                        names.iter().map(|n| Ok(item(self.name(n)?, None))).collect::<Result<_, _>>()?
                    }
                    Kind::Scalar { .. } => self.names(value)?.into_iter().map(|n| item(n, None)).collect(),
                };
                out.push(Stmt::Output(items));
            }
            "return" => out.push(Stmt::Return { value: self.expr(value)?, span }),
            name => {
                if !matches!(value.kind, Kind::Scalar { .. }) {
                    let d = self.wrong(value, "an expression");
                    return Err(match did_you_mean(name, STMT_KEYS.iter().copied()) {
                        Some(s) => {
                            d.help(format!("`{name}` binds a name; did you mean the statement `{s}`?"))
                        }
                        None => d,
                    });
                }
                out.push(Stmt::Let { names: self.names(key)?, value: self.expr(value)? });
            }
        }
        Ok(())
    }
}

/// The values of a checked mapping, by key.
struct Fields<'n>(&'n [(Node, Node)]);

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.0
            .iter()
            .find(|(k, _)| matches!(&k.kind, Kind::Scalar { value, .. } if value == key))
            .map(|(_, v)| v)
    }

    /// The entries of the mapping under `key`; none when it is absent.
    fn entries(&self, cx: &Cx, key: &str, what: &str) -> Result<&'n [(Node, Node)], Diagnostic> {
        self.get(key).map_or(Ok(&[]), |node| cx.entries(node, what))
    }
}
