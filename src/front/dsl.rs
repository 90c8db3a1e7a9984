//! The `.wick` surface: pest parse tree to AST.

use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op as PrattOp, PrattParser};
use pest::Parser;
use pest_derive::Parser;
use std::sync::OnceLock;

use super::ast::*;
use super::descent::{Descent, Entry, Fragment};
use super::span::{FileId, Span};
use crate::diag::{did_you_mean, Diagnostic};

#[derive(Parser)]
#[grammar = "../grammar/wick.pest"]
struct WickParser;

/// Deepest bracket nesting accepted: deeper text is refused before pest sees it, so no input
/// can exhaust the stack.
pub const MAX_NESTING: usize = 64;
/// Most operators accepted in one arithmetic expression, for the same reason.
pub const MAX_OPERATORS: usize = 1000;

const KEYWORDS: &[&str] = &[
    "use", "dim", "block", "model", "train", "input", "output", "return", "assert", "if", "else", "repeat",
    "in", "as",
];

/// The words the grammar's `keyword` rule keeps from being names (labels may still use them).
const RESERVED: &[&str] = &[
    "use", "dim", "block", "model", "input", "output", "return", "assert", "if", "else", "repeat", "in",
    "as", "of", "true", "false", "none",
];

/// Parse a whole `.wick` file: by the hand-written reading of the grammar ([`super::descent`]),
/// or, for text it does not read (every syntax error), by pest, which says why.
pub fn parse_file(text: &str, file: FileId) -> Result<Module, Diagnostic> {
    check_nesting(text, file, 0)?;
    match Descent::new(text, file, 0).file() {
        Some(module) => Ok(module),
        None => parse_file_with_pest(text, file),
    }
}

/// The hand-written reading alone: `None` where it leaves the text to pest.
#[doc(hidden)]
pub fn parse_file_by_descent(text: &str, file: FileId) -> Option<Module> {
    check_nesting(text, file, 0).ok()?;
    Descent::new(text, file, 0).file()
}

/// Parse a whole `.wick` file with pest alone: the reference the hand-written reading is
/// held to, and where syntax errors come from.
#[doc(hidden)]
pub fn parse_file_with_pest(text: &str, file: FileId) -> Result<Module, Diagnostic> {
    let b = Builder { file, base: 0 };
    check_nesting(text, file, 0)?;
    let pairs = WickParser::parse(Rule::file, text).map_err(|e| b.syntax_error(e, text))?;
    let mut items = Vec::new();
    for pair in pairs.flatten().take(1).flat_map(|p| p.into_inner()) {
        match pair.as_rule() {
            Rule::use_decl => {
                let s = pair.clone().into_inner().next();
                items.push(Item::Use {
                    path: s.map(|s| b.string(s).value).unwrap_or_default(),
                    span: b.span(&pair),
                })
            }
            Rule::dim_decl => {
                let mut inner = pair.into_inner();
                let name = b.ident(inner.next());
                let example = inner.next().map(|e| b.expr(e)).transpose()?;
                items.push(Item::Dim { name, example });
            }
            Rule::block_def | Rule::model_def => items.push(Item::Def(b.def(pair)?)),
            Rule::train_def => {
                if let Some(map) = pair.into_inner().next() {
                    items.push(Item::Train(b.config(map)));
                }
            }
            _ => {}
        }
    }
    Ok(Module { items, file })
}

/// Parse an expression that starts at byte `base` of `file` (YAML embeds these).
pub fn parse_expr(text: &str, file: FileId, base: usize) -> Result<Expr, Diagnostic> {
    let b = Builder { file, base };
    check_nesting(text, file, base)?;
    if let Some(Fragment::Expr(e)) = Descent::new(text, file, base).fragment(Entry::Expr) {
        return Ok(e);
    }
    let mut pairs = WickParser::parse(Rule::expr_only, text).map_err(|e| b.syntax_error(e, text))?;
    let pair = first_inner(&mut pairs, &b)?;
    b.expr(pair)
}

/// Parse a type (`int`, `[N, 784] of f32`) that starts at byte `base` of `file`.
pub fn parse_type(text: &str, file: FileId, base: usize) -> Result<TypeExpr, Diagnostic> {
    let b = Builder { file, base };
    check_nesting(text, file, base)?;
    if let Some(Fragment::Type(t)) = Descent::new(text, file, base).fragment(Entry::Type) {
        return Ok(t);
    }
    let mut pairs = WickParser::parse(Rule::type_only, text).map_err(|e| b.syntax_error(e, text))?;
    let pair = first_inner(&mut pairs, &b)?;
    b.type_expr(pair)
}

/// Parse a parameter declaration (`stride: int = 1`) that starts at byte `base` of `file`.
pub fn parse_param(text: &str, file: FileId, base: usize) -> Result<Param, Diagnostic> {
    let b = Builder { file, base };
    check_nesting(text, file, base)?;
    if let Some(Fragment::Param(p)) = Descent::new(text, file, base).fragment(Entry::Param) {
        return Ok(p);
    }
    let mut pairs = WickParser::parse(Rule::param_only, text).map_err(|e| b.syntax_error(e, text))?;
    let pair = first_inner(&mut pairs, &b)?;
    b.param(pair)
}

fn first_inner<'a>(pairs: &mut Pairs<'a, Rule>, b: &Builder) -> Result<Pair<'a, Rule>, Diagnostic> {
    pairs.next().and_then(|p| p.into_inner().next()).ok_or_else(|| {
        Diagnostic::error("E0101", "empty input").at(Span::new(b.file, b.base, b.base), "here")
    })
}

/// Refuse text nested deeper than [`MAX_NESTING`], skipping strings and comments.
pub(super) fn check_nesting(text: &str, file: FileId, base: usize) -> Result<(), Diagnostic> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut in_comment = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_comment {
            in_comment = c != '\n';
            continue;
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' | '\n' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '#' => in_comment = true,
            '"' => in_string = true,
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Diagnostic::error(
                        "E0102",
                        format!("brackets nested deeper than {MAX_NESTING} levels"),
                    )
                    .at(Span::new(file, base + i, base + i + 1), "too deep")
                    .help("split the expression into named steps"));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(PrattOp::infix(Rule::or, Assoc::Left))
            .op(PrattOp::infix(Rule::and, Assoc::Left))
            .op(PrattOp::infix(Rule::eq, Assoc::Left)
                | PrattOp::infix(Rule::ne, Assoc::Left)
                | PrattOp::infix(Rule::lt, Assoc::Left)
                | PrattOp::infix(Rule::le, Assoc::Left)
                | PrattOp::infix(Rule::gt, Assoc::Left)
                | PrattOp::infix(Rule::ge, Assoc::Left))
            .op(PrattOp::infix(Rule::add, Assoc::Left) | PrattOp::infix(Rule::sub, Assoc::Left))
            .op(PrattOp::infix(Rule::mul, Assoc::Left)
                | PrattOp::infix(Rule::div, Assoc::Left)
                | PrattOp::infix(Rule::rem, Assoc::Left))
            .op(PrattOp::prefix(Rule::neg) | PrattOp::prefix(Rule::not))
    })
}

struct Builder {
    file: FileId,
    base: usize,
}

impl Builder {
    /// The pair's span without the whitespace pest's implicit rules leave at its end.
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        let len = pair.as_str().trim_end().len();
        Span::new(self.file, self.base + s.start(), self.base + s.start() + len)
    }

    fn ident(&self, pair: Option<Pair<Rule>>) -> Ident {
        match pair {
            Some(p) => Ident { name: p.as_str().to_string(), span: self.span(&p) },
            None => Ident { name: String::new(), span: Span::new(self.file, self.base, self.base) },
        }
    }

    fn string(&self, pair: Pair<Rule>) -> StrLit {
        let span = self.span(&pair);
        let raw = pair.into_inner().next().map_or("", |p| p.as_str());
        let value = unescape(raw);
        StrLit { value, span }
    }

    fn config(&self, pair: Pair<Rule>) -> ConfigValue {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::cfg_map => ConfigKind::Map(
                pair.into_inner()
                    .map(|entry| {
                        let mut kv = entry.into_inner();
                        let key = match kv.next() {
                            Some(p) if p.as_rule() == Rule::string => {
                                let s = self.string(p);
                                Ident { name: s.value, span: s.span }
                            }
                            other => self.ident(other),
                        };
                        let value =
                            kv.next().map_or(ConfigValue { kind: ConfigKind::Null, span: key.span }, |v| {
                                self.config(v)
                            });
                        (key, value)
                    })
                    .collect(),
            ),
            Rule::cfg_list => ConfigKind::List(pair.into_inner().map(|v| self.config(v)).collect()),
            Rule::string => ConfigKind::Scalar { text: self.string(pair).value, quoted: true },
            Rule::cfg_number => ConfigKind::Scalar { text: pair.as_str().replace('_', ""), quoted: false },
            _ => ConfigKind::Scalar { text: pair.as_str().to_string(), quoted: false },
        };
        ConfigValue { kind, span }
    }

    fn def(&self, pair: Pair<Rule>) -> Result<Def, Diagnostic> {
        let kind = if pair.as_rule() == Rule::block_def { DefKind::Block } else { DefKind::Model };
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = self.ident(inner.next());
        let mut params = Vec::new();
        let mut returns = None;
        let mut body = Vec::new();
        for p in inner {
            match p.as_rule() {
                Rule::param => params.push(self.param(p)?),
                Rule::returns => returns = p.into_inner().next().map(|t| self.type_expr(t)).transpose()?,
                Rule::body => body = self.stmts(p.into_inner())?,
                _ => {}
            }
        }
        Ok(Def { kind, name, params, returns, body, span })
    }

    fn param(&self, pair: Pair<Rule>) -> Result<Param, Diagnostic> {
        let mut inner = pair.into_inner();
        let name = self.ident(inner.next());
        let ty = match inner.next() {
            Some(t) => self.type_expr(t)?,
            None => TypeExpr { kind: TypeKind::Int, span: name.span },
        };
        let default = inner.next().map(|e| self.expr(e)).transpose()?;
        Ok(Param { name, ty, default })
    }

    fn type_expr(&self, pair: Pair<Rule>) -> Result<TypeExpr, Diagnostic> {
        let span = self.span(&pair);
        let Some(inner) = pair.into_inner().next() else {
            return Ok(TypeExpr { kind: TypeKind::Int, span });
        };
        match inner.as_rule() {
            Rule::scalar_type | Rule::list_type => Ok(self.value_type(inner)),
            _ => self.tensor_type(inner),
        }
    }

    /// `int`, `float`, `bool`, `string`, or a list of one of them (`[int]`, `[[int]]`).
    fn value_type(&self, pair: Pair<Rule>) -> TypeExpr {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::list_type => match pair.into_inner().next() {
                Some(item) => TypeKind::List(Box::new(self.value_type(item))),
                None => TypeKind::Int,
            },
            _ => match pair.as_str() {
                "float" => TypeKind::Float,
                "bool" => TypeKind::Bool,
                "string" => TypeKind::Str,
                "op" => TypeKind::Op,
                _ => TypeKind::Int,
            },
        };
        TypeExpr { kind, span }
    }

    fn stmts(&self, pairs: Pairs<Rule>) -> Result<Vec<Stmt>, Diagnostic> {
        pairs.map(|p| self.stmt(p)).collect()
    }

    fn stmt(&self, pair: Pair<Rule>) -> Result<Stmt, Diagnostic> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        Ok(match rule {
            Rule::input_stmt => {
                let name = self.ident(inner.next());
                let ty = match inner.next() {
                    Some(t) => self.tensor_type(t)?,
                    None => TypeExpr { kind: TypeKind::Tensor { dims: vec![], dtype: None }, span },
                };
                Stmt::Input { name, ty }
            }
            Rule::output_stmt => {
                let mut outs = Vec::new();
                for item in inner {
                    let mut parts = item.into_inner();
                    let name = self.ident(parts.next());
                    let mut ty = None;
                    let mut value = None;
                    for p in parts {
                        match p.as_rule() {
                            Rule::tensor_type => ty = Some(self.tensor_type(p)?),
                            _ => value = Some(self.expr(p)?),
                        }
                    }
                    outs.push(OutputItem { name, ty, value });
                }
                Stmt::Output(outs)
            }
            Rule::return_stmt => Stmt::Return { value: self.expr_or_empty(inner.next(), span)?, span },
            Rule::assert_stmt => {
                let cond = self.expr_or_empty(inner.next(), span)?;
                let message = inner.next().map(|s| self.string(s));
                Stmt::Assert { cond, message, span }
            }
            Rule::let_stmt => {
                let mut names = Vec::new();
                let mut value = None;
                for p in inner {
                    match p.as_rule() {
                        Rule::ident => names.push(self.ident(Some(p))),
                        _ => value = Some(self.expr(p)?),
                    }
                }
                Stmt::Let { names, value: self.expr_or_empty_expr(value, span) }
            }
            _ => Stmt::Expr(self.expr_or_empty(inner.next(), span)?),
        })
    }

    fn tensor_type(&self, pair: Pair<Rule>) -> Result<TypeExpr, Diagnostic> {
        // `tensor_type` pairs are built like the tensor arm of `type_expr`.
        let span = self.span(&pair);
        let mut dims = Vec::new();
        let mut dtype = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ident => dtype = Some(self.ident(Some(p))),
                _ => dims.push(self.expr(p)?),
            }
        }
        Ok(TypeExpr { kind: TypeKind::Tensor { dims, dtype }, span })
    }

    fn expr_or_empty(&self, pair: Option<Pair<Rule>>, span: Span) -> Result<Expr, Diagnostic> {
        match pair {
            Some(p) => self.expr(p),
            None => Ok(Expr { kind: ExprKind::List(vec![]), span }),
        }
    }

    /// `expr = stage ("|>" stage)*`
    fn expr(&self, pair: Pair<Rule>) -> Result<Expr, Diagnostic> {
        let span = self.span(&pair);
        let mut stages = pair.into_inner().map(|s| self.stage(s)).collect::<Result<Vec<_>, _>>()?;
        if stages.len() == 1 {
            return Ok(stages.remove(0));
        }
        let head = stages.remove(0);
        Ok(Expr { kind: ExprKind::Pipe { head: Box::new(head), stages }, span })
    }

    fn stage(&self, pair: Pair<Rule>) -> Result<Expr, Diagnostic> {
        let span = self.span(&pair);
        let mut label = None;
        let mut body = None;
        let mut spread = false;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::spread => spread = true,
                Rule::label => label = Some(self.ident(Some(p))),
                Rule::quoted_label => {
                    let span = self.span(&p);
                    let text = p.into_inner().next().map(|s| self.string(s).value).unwrap_or_default();
                    label = Some(Ident { name: text, span });
                }
                _ => body = Some(self.operand(p)?),
            }
        }
        let body = self.expr_or_empty_expr(body, span);
        let stage = match label {
            Some(label) => Expr { kind: ExprKind::Labelled { label, body: Box::new(body) }, span },
            None => body,
        };
        Ok(match spread {
            true => Expr { kind: ExprKind::Spread(Box::new(stage)), span },
            false => stage,
        })
    }

    /// A range's bound or a list to go over, boxed; an empty expression where it is missing.
    fn operand_or_empty(&self, pair: Option<Pair<Rule>>, span: Span) -> Result<Box<Expr>, Diagnostic> {
        let e = pair.map(|p| self.operand(p)).transpose()?;
        Ok(Box::new(self.expr_or_empty_expr(e, span)))
    }

    fn expr_or_empty_expr(&self, e: Option<Expr>, span: Span) -> Expr {
        e.unwrap_or(Expr { kind: ExprKind::List(vec![]), span })
    }

    fn operand(&self, pair: Pair<Rule>) -> Result<Expr, Diagnostic> {
        let span = self.span(&pair);
        let pairs = pair.into_inner();
        let operators = pairs.clone().filter(|p| !is_primary(p.as_rule())).count();
        if operators > MAX_OPERATORS {
            return Err(Diagnostic::error(
                "E0102",
                format!("expression with more than {MAX_OPERATORS} operators"),
            )
            .at(span, "too long")
            .help("split the expression into named steps"));
        }
        pratt()
            .map_primary(|p| self.primary(p))
            .map_prefix(|op, rhs| {
                let rhs = rhs?;
                let span = self.span(&op).to(rhs.span);
                let op = if op.as_rule() == Rule::neg { UnOp::Neg } else { UnOp::Not };
                Ok(Expr { kind: ExprKind::Unary { op, operand: Box::new(rhs) }, span })
            })
            .map_infix(|lhs, op, rhs| {
                let (lhs, rhs) = (lhs?, rhs?);
                let span = lhs.span.to(rhs.span);
                let op = match op.as_rule() {
                    Rule::or => BinOp::Or,
                    Rule::and => BinOp::And,
                    Rule::eq => BinOp::Eq,
                    Rule::ne => BinOp::Ne,
                    Rule::lt => BinOp::Lt,
                    Rule::le => BinOp::Le,
                    Rule::gt => BinOp::Gt,
                    Rule::ge => BinOp::Ge,
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    _ => BinOp::Rem,
                };
                Ok(Expr { kind: ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span })
            })
            .parse(pairs)
    }

    fn primary(&self, pair: Pair<Rule>) -> Result<Expr, Diagnostic> {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::int => {
                let digits: String = pair.as_str().chars().filter(|c| *c != '_').collect();
                match digits.parse::<i64>() {
                    Ok(v) => ExprKind::Int(v),
                    Err(_) => {
                        return Err(Diagnostic::error("E0103", "integer literal too large")
                            .at(span, format!("does not fit in 64 bits (max {})", i64::MAX)))
                    }
                }
            }
            Rule::float => match pair.as_str().parse::<f64>() {
                Ok(v) if v.is_finite() => ExprKind::Float(v),
                _ => {
                    return Err(
                        Diagnostic::error("E0103", "float literal out of range").at(span, "not finite")
                    )
                }
            },
            Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
            Rule::none => ExprKind::None,
            Rule::string => ExprKind::Str(self.string(pair).value),
            Rule::name => ExprKind::Name(pair.as_str().to_string()),
            Rule::list => ExprKind::List(pair.into_inner().map(|p| self.expr(p)).collect::<Result<_, _>>()?),
            Rule::paren => match pair.into_inner().next() {
                Some(e) => ExprKind::Paren(Box::new(self.expr(e)?)),
                None => ExprKind::List(vec![]),
            },
            Rule::call => {
                let mut inner = pair.into_inner();
                let callee = self.ident(inner.next());
                let mut args = Vec::new();
                if let Some(list) = inner.next() {
                    for arg in list.into_inner() {
                        let mut parts: Vec<Pair<Rule>> = arg.into_inner().collect();
                        let value = parts.pop();
                        let name = parts.pop().map(|n| self.ident(Some(n)));
                        args.push(Arg { name, value: self.expr_or_empty(value, span)? });
                    }
                }
                ExprKind::Call { callee, args }
            }
            Rule::if_expr => return self.if_expr(pair),
            Rule::indexed => return self.indexed(pair),
            Rule::repeat_expr => {
                let mut over = None;
                let mut name_format = None;
                let mut body = None;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::range => {
                            let mut r = p.into_inner();
                            let var = self.ident(r.next());
                            let start = self.operand_or_empty(r.next(), span)?;
                            let end = self.operand_or_empty(r.next(), span)?;
                            over = Some(Over::Range { var, start, end });
                        }
                        Rule::each => {
                            let mut parts: Vec<Pair<Rule>> = p.into_inner().collect();
                            let list = self.operand_or_empty(parts.pop(), span)?;
                            let vars = parts.into_iter().map(|v| self.ident(Some(v))).collect();
                            over = Some(Over::Items { vars, list });
                        }
                        Rule::string => name_format = Some(self.string(p)),
                        Rule::expr if over.is_none() => over = Some(Over::Count(Box::new(self.expr(p)?))),
                        _ => body = Some(self.expr(p)?),
                    }
                }
                let over = over.unwrap_or_else(|| Over::Count(Box::new(self.expr_or_empty_expr(None, span))));
                ExprKind::Repeat(Repeat {
                    over,
                    name_format,
                    body: Box::new(self.expr_or_empty_expr(body, span)),
                })
            }
            _ => ExprKind::List(vec![]),
        };
        Ok(Expr { kind, span })
    }

    /// `base[i][j]` (or a bare `base`): each index applied to what the one before gave.
    fn indexed(&self, pair: Pair<Rule>) -> Result<Expr, Diagnostic> {
        let mut inner = pair.into_inner();
        let base = match inner.next().and_then(|b| b.into_inner().next()) {
            Some(b) => self.primary(b)?,
            None => return Ok(Expr { kind: ExprKind::List(vec![]), span: Span::default() }),
        };
        inner.try_fold(base, |base, index| {
            let span = base.span.to(self.span(&index));
            let index = self.expr_or_empty(index.into_inner().next(), span)?;
            Ok(Expr { kind: ExprKind::Index { base: Box::new(base), index: Box::new(index) }, span })
        })
    }

    fn if_expr(&self, pair: Pair<Rule>) -> Result<Expr, Diagnostic> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let cond = self.expr_or_empty(inner.next(), span)?;
        let then = match inner.next() {
            Some(b) => self.stmts(b.into_inner())?,
            None => vec![],
        };
        let otherwise = match inner.next() {
            Some(p) if p.as_rule() == Rule::if_expr => {
                let nested = self.if_expr(p)?;
                Some(vec![Stmt::Expr(nested)])
            }
            Some(b) => Some(self.stmts(b.into_inner())?),
            None => None,
        };
        Ok(Expr { kind: ExprKind::If { cond: Box::new(cond), then, otherwise }, span })
    }

    fn syntax_error(&self, e: pest::error::Error<Rule>, text: &str) -> Diagnostic {
        let pos = match e.location {
            pest::error::InputLocation::Pos(p) => p,
            pest::error::InputLocation::Span((s, _)) => s,
        };
        let found = found_at(text, pos);
        let expected = match &e.variant {
            pest::error::ErrorVariant::ParsingError { positives, .. } => describe_expected(positives),
            pest::error::ErrorVariant::CustomError { message } => message.clone(),
        };
        let len = match &found {
            Found::Word(w) | Found::Char(w) => w.len(),
            Found::End => 0,
        };
        let span = Span::new(self.file, self.base + pos, self.base + pos + len);
        let mut d = Diagnostic::error("E0101", format!("expected {expected}, found {}", found.describe()))
            .at(span, format!("expected {expected}"));
        if let Found::Word(w) = &found {
            if RESERVED.contains(&w.as_str()) {
                d = d.help(format!(
                    "`{w}` is a reserved word: choose another name (as a label, `{w}: ...`, it may stay)"
                ));
            } else if let Some(k) = did_you_mean(w, KEYWORDS.iter().copied()).filter(|k| k != w) {
                d = d.help(format!("did you mean the keyword `{k}`?"));
            }
        }
        d
    }
}

/// A string literal's text between its quotes, its escapes read: `\n`, `\t`, and any other
/// character after a backslash as itself.
pub(super) fn unescape(raw: &str) -> String {
    let mut value = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some(other) => value.push(other),
                None => {}
            }
        } else {
            value.push(c);
        }
    }
    value
}

fn is_primary(rule: Rule) -> bool {
    !matches!(
        rule,
        Rule::or
            | Rule::and
            | Rule::eq
            | Rule::ne
            | Rule::lt
            | Rule::le
            | Rule::gt
            | Rule::ge
            | Rule::add
            | Rule::sub
            | Rule::mul
            | Rule::div
            | Rule::rem
            | Rule::neg
            | Rule::not
    )
}

enum Found {
    Word(String),
    Char(String),
    End,
}

impl Found {
    fn describe(&self) -> String {
        match self {
            Found::Word(w) => format!("`{w}`"),
            Found::Char(c) => format!("`{c}`"),
            Found::End => "the end of the file".into(),
        }
    }
}

fn found_at(text: &str, pos: usize) -> Found {
    let rest = text.get(pos..).unwrap_or("");
    let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if !word.is_empty() {
        return Found::Word(word);
    }
    match rest.chars().next() {
        Some(c) => Found::Char(c.to_string()),
        None => Found::End,
    }
}

fn describe_expected(rules: &[Rule]) -> String {
    let mut words: Vec<&str> = Vec::new();
    for r in rules {
        let w = match r {
            Rule::use_word => "`use`",
            Rule::dim_word => "`dim`",
            Rule::block_word => "`block`",
            Rule::model_word => "`model`",
            Rule::train_word => "`train`",
            Rule::input_word => "`input`",
            Rule::output_word => "`output`",
            Rule::return_word => "`return`",
            Rule::assert_word => "`assert`",
            Rule::if_word => "`if`",
            Rule::else_word => "`else`",
            Rule::repeat_word => "`repeat`",
            Rule::in_word => "`in`",
            Rule::as_word => "`as`",
            Rule::of_word => "`of`",
            Rule::use_decl => "`use`",
            Rule::dim_decl => "`dim`",
            Rule::block_def => "`block`",
            Rule::model_def => "`model`",
            Rule::train_def => "`train`",
            Rule::cfg_map => "`{`",
            Rule::cfg_entry | Rule::cfg_key => "a key (`name: value`)",
            Rule::cfg_list | Rule::cfg_number | Rule::cfg_word | Rule::cfg_call => "a value",
            Rule::EOI => "the end of the file",
            Rule::ident | Rule::arg_name | Rule::label | Rule::name => "a name",
            Rule::quoted_label => "a label",
            Rule::spread => "`...`",
            Rule::param => "a parameter (`name: type`)",
            Rule::type_expr | Rule::scalar_type | Rule::tensor_type | Rule::list_type => {
                "a type (`int`, `float`, `bool`, `string`, `op`, a list `[int]` or a tensor `[dims]`)"
            }
            Rule::returns => "`->`",
            Rule::body | Rule::branch => "`{`",
            Rule::input_stmt
            | Rule::output_stmt
            | Rule::return_stmt
            | Rule::assert_stmt
            | Rule::let_stmt
            | Rule::expr_stmt => "a statement",
            Rule::expr | Rule::stage | Rule::operand | Rule::primary => "an expression",
            Rule::call
            | Rule::list
            | Rule::paren
            | Rule::indexed
            | Rule::index_base
            | Rule::int
            | Rule::float
            | Rule::string
            | Rule::boolean
            | Rule::none => "a value",
            Rule::if_expr | Rule::repeat_expr | Rule::neg | Rule::not => "an expression",
            Rule::args | Rule::arg => "an argument",
            Rule::index => "an index (`[i]`)",
            Rule::range => "a range (`i in 0..n`)",
            Rule::each => "the names of a list's items (`c in cfg`)",
            Rule::or
            | Rule::and
            | Rule::eq
            | Rule::ne
            | Rule::lt
            | Rule::le
            | Rule::gt
            | Rule::ge
            | Rule::add
            | Rule::sub
            | Rule::mul
            | Rule::div
            | Rule::rem => "an operator",
            Rule::output_item => "an output name",
            _ => "something else",
        };
        if !words.contains(&w) {
            words.push(w);
        }
    }
    match words.len() {
        0 => "valid syntax".into(),
        1 => words[0].into(),
        n => format!("{} or {}", words[..n - 1].join(", "), words[n - 1]),
    }
}
