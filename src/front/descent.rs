//! A hand-written recursive-descent reading of `grammar/wick.pest`, which stays the language's
//! definition: pest took about two thirds of compiling a long spec.
//!
//! Each function below mirrors one rule of the grammar as a PEG: ordered choice, `?`, `*`,
//! look-aheads, and pest's implicit whitespace (`skip`: spaces, newlines and `#` comments)
//! between the items of a non-atomic sequence. A rule's span ends where pest's pair ends,
//! which includes the skip before an optional tail that matched nothing; spans are trimmed as
//! the pest builder trims them, so both readings give the same AST, spans included.
//!
//! This reading only ever says "here is the AST" or "not read": text it does not read (a
//! syntax error, an integer too large, a chain of `else if` deeper than it follows) goes
//! through pest, which gives the error with its position and message. So a spec is never
//! refused here that pest would accept with a different meaning, and every error is pest's.

use super::ast::*;
use super::span::{FileId, Span};

/// Deepest `else if` chain followed here (deeper ones go through pest). Brackets are bounded
/// before parsing (`dsl::MAX_NESTING`), so this is the one other recursion.
const MAX_ELSE_IF: usize = 64;

/// The words the grammar's `keyword` rule keeps from being names.
fn is_reserved(word: &str) -> bool {
    // A `match` compares a word's length before its bytes: most identifiers are rejected at
    // once, where a scan of a list compared every entry.
    matches!(
        word,
        "use"
            | "dim"
            | "block"
            | "model"
            | "input"
            | "output"
            | "return"
            | "assert"
            | "if"
            | "else"
            | "repeat"
            | "in"
            | "as"
            | "of"
            | "true"
            | "false"
            | "none"
    )
}

/// What a rule read and where pest's pair for it ends (before trimming).
type Read<T> = Option<(T, usize)>;

/// Which entry rule to read: a whole file, or a fragment YAML embeds.
pub(super) enum Entry {
    Expr,
    Type,
    Param,
}

/// A fragment read through [`Entry`].
pub(super) enum Fragment {
    Expr(Expr),
    Type(TypeExpr),
    Param(Param),
}

pub(super) struct Descent<'t> {
    text: &'t str,
    b: &'t [u8],
    file: FileId,
    base: usize,
    /// Set when the text is left to pest although the rule matched (a literal out of range).
    bail: bool,
    else_if: usize,
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

/// Whether `text` is one bare word of the grammar (`cfg_key`, `cfg_word`: `adam`, `lr`), which
/// reads back without quotes.
pub fn is_word(text: &str) -> bool {
    let b = text.as_bytes();
    b.first().is_some_and(|&c| ident_start(c)) && b.iter().all(|&c| ident_char(c))
}

impl<'t> Descent<'t> {
    pub(super) fn new(text: &'t str, file: FileId, base: usize) -> Descent<'t> {
        Descent { text, b: text.as_bytes(), file, base, bail: false, else_if: 0 }
    }

    /// `file = { SOI ~ item* ~ EOI }`
    pub(super) fn file(mut self) -> Option<Module> {
        let mut items = Vec::new();
        let mut at = self.skip(0);
        while let Some((item, end)) = self.item(at) {
            items.extend(item);
            at = self.skip(end);
        }
        (at == self.b.len() && !self.bail).then_some(Module { items, file: self.file })
    }

    /// `expr_only`, `type_only`, `param_only`: `SOI ~ rule ~ EOI`.
    pub(super) fn fragment(mut self, entry: Entry) -> Option<Fragment> {
        let at = self.skip(0);
        let (read, end) = match entry {
            Entry::Expr => self.expr(at).map(|(e, end)| (Fragment::Expr(e), end))?,
            Entry::Type => self.type_expr(at).map(|(t, end)| (Fragment::Type(t), end))?,
            Entry::Param => self.param(at).map(|(p, end)| (Fragment::Param(p), end))?,
        };
        (self.skip(end) == self.b.len() && !self.bail).then_some(read)
    }

    // ---- characters ----

    /// pest's implicit whitespace: `WHITESPACE* ~ (COMMENT ~ WHITESPACE*)*`.
    fn skip(&self, mut at: usize) -> usize {
        loop {
            at = self.blanks(at);
            if self.b.get(at) != Some(&b'#') {
                return at;
            }
            while at < self.b.len() && self.b[at] != b'\n' {
                at += 1;
            }
        }
    }

    /// `WHITESPACE*` alone (a label's look-ahead).
    fn blanks(&self, mut at: usize) -> usize {
        while matches!(self.b.get(at), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            at += 1;
        }
        at
    }

    fn at(&self, at: usize) -> u8 {
        self.b.get(at).copied().unwrap_or(0)
    }

    fn lit(&self, at: usize, s: &str) -> Option<usize> {
        self.b.get(at..)?.starts_with(s.as_bytes()).then_some(at + s.len())
    }

    fn word_end(&self, mut at: usize) -> usize {
        while at < self.b.len() && ident_char(self.b[at]) {
            at += 1;
        }
        at
    }

    /// `kw_x = _{ &x_word ~ "x" }`, `x_word = @{ "x" ~ !ident_char }`.
    fn kw(&self, at: usize, word: &str) -> Option<usize> {
        self.lit(at, word).filter(|end| !ident_char(self.at(*end)))
    }

    /// The span of a pair from `start` to `end`, trimmed as the pest builder trims it.
    fn span(&self, start: usize, end: usize) -> Span {
        let len = self.text.get(start..end).map_or(0, |s| s.trim_end().len());
        Span::new(self.file, self.base + start, self.base + start + len)
    }

    // ---- tokens ----

    /// `ident = @{ !keyword ~ (ASCII_ALPHA | "_") ~ ident_char* }`
    fn ident(&self, at: usize) -> Read<Ident> {
        let end = self.ident_end(at)?;
        Some((self.ident_at(at, end), end))
    }

    /// Where an `ident` at `at` ends, its name not yet copied out: a caller that may still
    /// refuse it (a call without its `(`, a label without its `:`) allocates nothing.
    fn ident_end(&self, at: usize) -> Option<usize> {
        if !ident_start(self.at(at)) {
            return None;
        }
        let end = self.word_end(at);
        (!is_reserved(&self.text[at..end])).then_some(end)
    }

    /// The identifier of the text from `at` to `end`.
    fn ident_at(&self, at: usize, end: usize) -> Ident {
        Ident { name: self.text[at..end].to_string(), span: self.span(at, end) }
    }

    /// A bare word (`arg_name`, `cfg_key`, `cfg_word`): `(ASCII_ALPHA | "_") ~ ident_char*`.
    fn word(&self, at: usize) -> Option<usize> {
        ident_start(self.at(at)).then(|| self.word_end(at))
    }

    /// `string = ${ "\"" ~ string_inner ~ "\"" }`, its escapes read as the builder reads them.
    fn string(&self, at: usize) -> Read<StrLit> {
        if self.at(at) != b'"' {
            return None;
        }
        let mut i = at + 1;
        loop {
            match *self.b.get(i)? {
                b'"' => break,
                b'\n' => return None,
                b'\\' => {
                    let c = self.text.get(i + 1..)?.chars().next()?;
                    i += 1 + c.len_utf8();
                }
                _ => i += 1,
            }
        }
        let value = super::dsl::unescape(&self.text[at + 1..i]);
        Some((StrLit { value, span: self.span(at, i + 1) }, i + 1))
    }

    fn digits(&self, mut at: usize) -> Option<usize> {
        let start = at;
        while self.at(at).is_ascii_digit() {
            at += 1;
        }
        (at > start).then_some(at)
    }

    /// `^"e" ~ ("+" | "-")? ~ ASCII_DIGIT+`
    fn exponent(&self, at: usize) -> Option<usize> {
        if !matches!(self.at(at), b'e' | b'E') {
            return None;
        }
        let sign = at + 1 + usize::from(matches!(self.at(at + 1), b'+' | b'-'));
        self.digits(sign)
    }

    /// `float = @{ D+ ~ "." ~ D+ ~ exponent? | D+ ~ exponent }`
    fn float(&self, at: usize) -> Option<usize> {
        let whole = self.digits(at)?;
        if self.at(whole) == b'.' {
            if let Some(frac) = self.digits(whole + 1) {
                return Some(self.exponent(frac).unwrap_or(frac));
            }
        }
        self.exponent(whole)
    }

    /// `int = @{ ASCII_DIGIT ~ (ASCII_DIGIT | "_")* }`
    fn int(&self, at: usize) -> Option<usize> {
        if !self.at(at).is_ascii_digit() {
            return None;
        }
        let mut end = at + 1;
        while self.at(end).is_ascii_digit() || self.at(end) == b'_' {
            end += 1;
        }
        Some(end)
    }

    // ---- items ----

    /// `item = _{ use_decl | dim_decl | block_def | model_def | train_def }`
    fn item(&mut self, at: usize) -> Read<Option<Item>> {
        if let Some(e) = self.kw(at, "use") {
            let (s, end) = self.string(self.skip(e))?;
            return Some((Some(Item::Use { path: s.value, span: self.span(at, end) }), end));
        }
        if let Some(e) = self.kw(at, "dim") {
            let (name, mut end) = self.ident(self.skip(e))?;
            let mut example = None;
            let eq = self.skip(end);
            end = eq;
            if self.at(eq) == b'=' {
                if let Some((x, e)) = self.expr(self.skip(eq + 1)) {
                    example = Some(x);
                    end = e;
                }
            }
            return Some((Some(Item::Dim { name, example }), end));
        }
        if let Some(e) = self.kw(at, "block") {
            return self.def(at, e, DefKind::Block).map(|(d, end)| (Some(Item::Def(d)), end));
        }
        if let Some(e) = self.kw(at, "model") {
            return self.def(at, e, DefKind::Model).map(|(d, end)| (Some(Item::Def(d)), end));
        }
        let e = self.kw(at, "train")?;
        let (map, end) = self.cfg_map(self.skip(e))?;
        Some((Some(Item::Train(map)), end))
    }

    /// `block_def = { kw_block ~ ident ~ "(" ~ params? ~ ")" ~ returns? ~ body }`
    /// `model_def = { kw_model ~ ident ~ ("(" ~ params? ~ ")")? ~ body }`
    fn def(&mut self, start: usize, after_kw: usize, kind: DefKind) -> Read<Def> {
        let (name, e) = self.ident(self.skip(after_kw))?;
        let mut at = self.skip(e);
        let mut params = Vec::new();
        let mut returns = None;
        let open = self.lit(at, "(");
        if kind == DefKind::Block && open.is_none() {
            return None;
        }
        if let Some(open) = open {
            let mut p = self.skip(open);
            if let Some((ps, e)) = self.params(p) {
                params = ps;
                p = self.skip(e);
            }
            match self.lit(p, ")") {
                Some(close) => at = self.skip(close),
                None if kind == DefKind::Block => return None,
                // The optional `( params )` of a model did not match: the body follows the name.
                None => params.clear(),
            }
        }
        if kind == DefKind::Block {
            if let Some(arrow) = self.lit(at, "->") {
                if let Some((t, e)) = self.type_expr(self.skip(arrow)) {
                    returns = Some(t);
                    at = self.skip(e);
                }
            }
        }
        let (body, end) = self.body(at)?;
        Some((Def { kind, name, params, returns, body, span: self.span(start, end) }, end))
    }

    /// `params = _{ param ~ ("," ~ param)* ~ ","? }`
    fn params(&mut self, at: usize) -> Read<Vec<Param>> {
        let (first, mut end) = self.param(at)?;
        let mut params = vec![first];
        while let Some((p, e)) = self.lit(self.skip(end), ",").and_then(|c| self.param(self.skip(c))) {
            params.push(p);
            end = e;
        }
        let at = self.skip(end);
        Some((params, self.lit(at, ",").unwrap_or(at)))
    }

    /// `param = { ident ~ ":" ~ type_expr ~ ("=" ~ expr)? }`
    fn param(&mut self, at: usize) -> Read<Param> {
        let (name, e) = self.ident(at)?;
        let colon = self.lit(self.skip(e), ":")?;
        let (ty, e) = self.type_expr(self.skip(colon))?;
        let at = self.skip(e);
        let default = self.lit(at, "=").and_then(|eq| self.expr(self.skip(eq)));
        let end = default.as_ref().map_or(at, |(_, e)| *e);
        Some((Param { name, ty, default: default.map(|(x, _)| x) }, end))
    }

    /// `body = { "{" ~ stmt* ~ "}" }` (and `branch`, the same).
    fn body(&mut self, at: usize) -> Read<Vec<Stmt>> {
        let mut p = self.skip(self.lit(at, "{")?);
        let mut stmts = Vec::new();
        while let Some((s, e)) = self.stmt(p) {
            stmts.push(s);
            p = self.skip(e);
        }
        stmts.shrink_to_fit();
        Some((stmts, self.lit(p, "}")?))
    }

    // ---- types ----

    /// `type_expr = { scalar_type | list_type | tensor_type }`
    fn type_expr(&mut self, at: usize) -> Read<TypeExpr> {
        self.value_type(at).or_else(|| self.tensor_type(at))
    }

    /// `scalar_type` or `list_type`.
    fn value_type(&mut self, at: usize) -> Read<TypeExpr> {
        if let Some(end) = self.word(at) {
            let kind = match &self.text[at..end] {
                "int" => TypeKind::Int,
                "float" => TypeKind::Float,
                "bool" => TypeKind::Bool,
                "string" => TypeKind::Str,
                "op" => TypeKind::Op,
                _ => return None,
            };
            return Some((TypeExpr { kind, span: self.span(at, end) }, end));
        }
        let open = self.lit(at, "[")?;
        let (item, e) = self.value_type(self.skip(open))?;
        let end = self.lit(self.skip(e), "]")?;
        Some((TypeExpr { kind: TypeKind::List(Box::new(item)), span: self.span(at, end) }, end))
    }

    /// `tensor_type = { "[" ~ (expr ~ ("," ~ expr)*)? ~ ","? ~ "]" ~ (kw_of ~ ident)? }`
    fn tensor_type(&mut self, at: usize) -> Read<TypeExpr> {
        let (dims, close) = self.bracketed(at, b'[', b']')?;
        let mut end = self.skip(close);
        let mut dtype = None;
        if let Some((id, e)) = self.kw(end, "of").and_then(|of| self.ident(self.skip(of))) {
            dtype = Some(id);
            end = e;
        }
        Some((TypeExpr { kind: TypeKind::Tensor { dims, dtype }, span: self.span(at, end) }, end))
    }

    /// `open ~ (expr ~ ("," ~ expr)*)? ~ ","? ~ close`: a list's or a tensor type's items.
    fn bracketed(&mut self, at: usize, open: u8, close: u8) -> Read<Vec<Expr>> {
        if self.at(at) != open {
            return None;
        }
        let mut p = self.skip(at + 1);
        let mut items = Vec::new();
        if let Some((first, mut end)) = self.expr(p) {
            items.push(first);
            while let Some((x, e)) = self.lit(self.skip(end), ",").and_then(|c| self.expr(self.skip(c))) {
                items.push(x);
                end = e;
            }
            p = self.skip(end);
        }
        p = self.skip(self.lit(p, ",").unwrap_or(p));
        (self.at(p) == close).then_some((items, p + 1))
    }

    // ---- statements ----

    /// `stmt = _{ input_stmt | output_stmt | return_stmt | assert_stmt | let_stmt | expr_stmt }`
    fn stmt(&mut self, at: usize) -> Read<Stmt> {
        if let Some(e) = self.kw(at, "input") {
            if let Some(read) = self.input_stmt(e) {
                return Some(read);
            }
        }
        if let Some(e) = self.kw(at, "output") {
            if let Some(read) = self.output_stmt(e) {
                return Some(read);
            }
        }
        if let Some(e) = self.kw(at, "return") {
            if let Some((value, end)) = self.expr(self.skip(e)) {
                return Some((Stmt::Return { value, span: self.span(at, end) }, end));
            }
        }
        if let Some(e) = self.kw(at, "assert") {
            if let Some((cond, e)) = self.expr(self.skip(e)) {
                let mut end = self.skip(e);
                let mut message = None;
                if let Some((s, e)) = self.lit(end, ",").and_then(|c| self.string(self.skip(c))) {
                    message = Some(s);
                    end = e;
                }
                return Some((Stmt::Assert { cond, message, span: self.span(at, end) }, end));
            }
        }
        if let Some(read) = self.let_stmt(at) {
            return Some(read);
        }
        self.expr(at).map(|(e, end)| (Stmt::Expr(e), end))
    }

    /// `input_stmt = { kw_input ~ ident ~ ":" ~ tensor_type }`
    fn input_stmt(&mut self, after_kw: usize) -> Read<Stmt> {
        let (name, e) = self.ident(self.skip(after_kw))?;
        let colon = self.lit(self.skip(e), ":")?;
        let (ty, end) = self.tensor_type(self.skip(colon))?;
        Some((Stmt::Input { name, ty }, end))
    }

    /// `output_stmt = { kw_output ~ output_item ~ ("," ~ output_item)* }`
    fn output_stmt(&mut self, after_kw: usize) -> Read<Stmt> {
        let (first, mut end) = self.output_item(self.skip(after_kw))?;
        let mut items = vec![first];
        while let Some((item, e)) = self.lit(self.skip(end), ",").and_then(|c| self.output_item(self.skip(c)))
        {
            items.push(item);
            end = e;
        }
        Some((Stmt::Output(items), end))
    }

    /// `output_item = { ident ~ (":" ~ tensor_type)? ~ ("=" ~ !"=" ~ expr)? }`
    fn output_item(&mut self, at: usize) -> Read<OutputItem> {
        let (name, e) = self.ident(at)?;
        let mut end = self.skip(e);
        let mut ty = None;
        if let Some((t, e)) = self.lit(end, ":").and_then(|c| self.tensor_type(self.skip(c))) {
            ty = Some(t);
            end = self.skip(e);
        }
        let mut value = None;
        if let Some((v, e)) = self.assigned(end) {
            value = Some(v);
            end = e;
        }
        Some((OutputItem { name, ty, value }, end))
    }

    /// `"=" ~ !"=" ~ expr`
    fn assigned(&mut self, at: usize) -> Read<Expr> {
        let p = self.skip(self.lit(at, "=")?);
        if self.at(p) == b'=' {
            return None;
        }
        self.expr(p)
    }

    /// `let_stmt = { ident ~ ("," ~ ident)* ~ "=" ~ !"=" ~ expr }`
    fn let_stmt(&mut self, at: usize) -> Read<Stmt> {
        let (first, mut end) = self.ident(at)?;
        let mut names = vec![first];
        while let Some((id, e)) = self.lit(self.skip(end), ",").and_then(|c| self.ident(self.skip(c))) {
            names.push(id);
            end = e;
        }
        let (value, end) = self.assigned(self.skip(end))?;
        Some((Stmt::Let { names, value }, end))
    }

    // ---- expressions ----

    /// `expr = { stage ~ ("|>" ~ stage)* }`; one stage is the stage itself.
    fn expr(&mut self, at: usize) -> Read<Expr> {
        let (head, mut end) = self.stage(at)?;
        let mut stages = Vec::new();
        while let Some((s, e)) = self.lit(self.skip(end), "|>").and_then(|p| self.stage(self.skip(p))) {
            stages.push(s);
            end = e;
        }
        if stages.is_empty() {
            return Some((head, self.skip(end)));
        }
        // An AST is held through elaboration: no room to spare (most pipes are one stage long).
        stages.shrink_to_fit();
        Some((Expr { kind: ExprKind::Pipe { head: Box::new(head), stages }, span: self.span(at, end) }, end))
    }

    /// `stage = { spread? ~ ((label | quoted_label) ~ ":")? ~ operand }`
    fn stage(&mut self, at: usize) -> Read<Expr> {
        let spread = self.lit(at, "...");
        let mut p = self.skip(spread.unwrap_or(at));
        let mut label = None;
        if let Some((l, colon)) = self.label(p) {
            label = Some(l);
            p = self.skip(colon + 1);
        }
        let (body, end) = self.operand(p)?;
        let span = self.span(at, end);
        let stage = match label {
            Some(label) => Expr { kind: ExprKind::Labelled { label, body: Box::new(body) }, span },
            None => body,
        };
        Some(match spread {
            Some(_) => (Expr { kind: ExprKind::Spread(Box::new(stage)), span }, end),
            None => (stage, end),
        })
    }

    /// `label` or `quoted_label`, each followed by `WHITESPACE* ~ ":" ~ !":"`; returns the
    /// label and the position of its `:`.
    fn label(&self, at: usize) -> Option<(Ident, usize)> {
        let colon_after = |end: usize| {
            let colon = self.blanks(end);
            (self.at(colon) == b':' && self.at(colon + 1) != b':').then_some(colon)
        };
        // The colon first: most stages have no label, and their first word is not copied.
        match self.at(at) {
            c if ident_start(c) => {
                let end = self.word_end(at);
                colon_after(end).map(|colon| (self.ident_at(at, end), colon))
            }
            c if c.is_ascii_digit() => {
                let end = self.digits(at)?;
                colon_after(end).map(|colon| (self.ident_at(at, end), colon))
            }
            b'"' => {
                let (s, end) = self.string(at)?;
                colon_after(end).map(|colon| (Ident { name: s.value, span: s.span }, colon))
            }
            _ => None,
        }
    }

    /// `operand = { prefix* ~ primary ~ (infix ~ prefix* ~ primary)* }`, with pest's Pratt
    /// parser's precedences (prefix binds tightest, every infix operator to the left).
    fn operand(&mut self, at: usize) -> Read<Expr> {
        let (first, e, mut operators) = self.prefixed(at)?;
        let mut end = e;
        let mut after = self.skip(e);
        // Most operands are one primary: no stacks for them, the same reading as below.
        if self.infix(after).is_none() {
            if operators > super::dsl::MAX_OPERATORS {
                self.bail = true;
            }
            // With no infix, pest's pair takes the blanks before the empty repetition.
            return Some((first, after));
        }
        let mut operands = vec![first];
        let mut ops: Vec<BinOp> = Vec::new();
        let mut infixes = 0usize;
        while let Some((op, e)) = self.infix(after) {
            let Some((unit, e, prefixes)) = self.prefixed(self.skip(e)) else { break };
            // Reduce what binds at least as tightly: left associativity.
            while ops.last().is_some_and(|top| precedence(*top) >= precedence(op)) {
                self.reduce(&mut operands, &mut ops);
            }
            ops.push(op);
            operands.push(unit);
            infixes += 1;
            operators += 1 + prefixes;
            end = e;
            after = self.skip(e);
        }
        // With no infix, pest's pair takes the blanks before the empty repetition.
        if infixes == 0 {
            end = after;
        }
        // The builder refuses more (the operators of one operand, prefixes included).
        if operators > super::dsl::MAX_OPERATORS {
            self.bail = true;
        }
        while !ops.is_empty() {
            self.reduce(&mut operands, &mut ops);
        }
        operands.pop().map(|x| (x, end))
    }

    fn reduce(&self, operands: &mut Vec<Expr>, ops: &mut Vec<BinOp>) {
        let (Some(op), Some(rhs), Some(lhs)) = (ops.pop(), operands.pop(), operands.pop()) else { return };
        let span = lhs.span.to(rhs.span);
        operands.push(Expr { kind: ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span });
    }

    /// `prefix* ~ primary`: the primary with its prefix operators applied, innermost last,
    /// where its pair ends, and how many prefixes it has.
    fn prefixed(&mut self, at: usize) -> Option<(Expr, usize, usize)> {
        let mut prefixes: Vec<(UnOp, usize, usize)> = Vec::new();
        let mut p = at;
        loop {
            let t = if prefixes.is_empty() { p } else { self.skip(p) };
            match self.at(t) {
                b'-' => {
                    prefixes.push((UnOp::Neg, t, t + 1));
                    p = t + 1;
                }
                // `not = { "!" ~ !"=" }`: its pair takes the blanks before the look-ahead.
                b'!' if self.at(self.skip(t + 1)) != b'=' => {
                    let end = self.skip(t + 1);
                    prefixes.push((UnOp::Not, t, end));
                    p = end;
                }
                _ => break,
            }
        }
        let (mut x, end) = self.primary(self.skip(p))?;
        let count = prefixes.len();
        for (op, start, op_end) in prefixes.into_iter().rev() {
            let span = self.span(start, op_end).to(x.span);
            x = Expr { kind: ExprKind::Unary { op, operand: Box::new(x) }, span };
        }
        Some((x, end, count))
    }

    /// `infix = _{ or | and | eq | ne | le | ge | lt | gt | add | sub | mul | div | rem }`
    fn infix(&self, at: usize) -> Option<(BinOp, usize)> {
        const TWO: [(&str, BinOp); 6] = [
            ("||", BinOp::Or),
            ("&&", BinOp::And),
            ("==", BinOp::Eq),
            ("!=", BinOp::Ne),
            ("<=", BinOp::Le),
            (">=", BinOp::Ge),
        ];
        if let Some((s, op)) = TWO.iter().find(|(s, _)| self.lit(at, s).is_some()) {
            return Some((*op, at + s.len()));
        }
        let op = match self.at(at) {
            b'<' => BinOp::Lt,
            b'>' => BinOp::Gt,
            b'+' => BinOp::Add,
            // `sub = { "-" ~ !">" }`, the blanks between them skipped.
            b'-' if self.at(self.skip(at + 1)) != b'>' => return Some((BinOp::Sub, self.skip(at + 1))),
            b'*' => BinOp::Mul,
            b'/' => BinOp::Div,
            b'%' => BinOp::Rem,
            _ => return None,
        };
        Some((op, at + 1))
    }

    /// `primary = _{ if_expr | repeat_expr | indexed | float | int | string | boolean | none }`
    fn primary(&mut self, at: usize) -> Read<Expr> {
        if let Some(e) = self.kw(at, "if") {
            if let Some(read) = self.if_expr(at, e) {
                return Some(read);
            }
        }
        if let Some(e) = self.kw(at, "repeat") {
            if let Some(read) = self.repeat_expr(at, e) {
                return Some(read);
            }
        }
        if let Some(read) = self.indexed(at) {
            return Some(read);
        }
        let literal = |kind, end| Some((Expr { kind, span: self.span(at, end) }, end));
        if let Some(end) = self.float(at) {
            match self.text[at..end].parse::<f64>() {
                Ok(v) if v.is_finite() => return literal(ExprKind::Float(v), end),
                _ => self.bail = true,
            }
            return None;
        }
        if let Some(end) = self.int(at) {
            let written = &self.text[at..end];
            let parsed = match written.contains('_') {
                true => written.chars().filter(|c| *c != '_').collect::<String>().parse::<i64>(),
                false => written.parse::<i64>(),
            };
            match parsed {
                Ok(v) => return literal(ExprKind::Int(v), end),
                Err(_) => self.bail = true,
            }
            return None;
        }
        if let Some((s, end)) = self.string(at) {
            return literal(ExprKind::Str(s.value), end);
        }
        for (word, kind) in
            [("true", ExprKind::Bool(true)), ("false", ExprKind::Bool(false)), ("none", ExprKind::None)]
        {
            if let Some(end) = self.kw(at, word) {
                return literal(kind, end);
            }
        }
        None
    }

    /// `indexed = ${ index_base ~ index* }`, `index = !{ "[" ~ expr ~ "]" }`: no blank
    /// before an index.
    fn indexed(&mut self, at: usize) -> Read<Expr> {
        let (mut x, mut end) = self.index_base(at)?;
        while self.at(end) == b'[' {
            let Some((index, e)) = self.expr(self.skip(end + 1)) else { break };
            let Some(close) = self.lit(self.skip(e), "]") else { break };
            let span = x.span.to(self.span(end, close));
            x = Expr { kind: ExprKind::Index { base: Box::new(x), index: Box::new(index) }, span };
            end = close;
        }
        Some((x, end))
    }

    /// `index_base = !{ call | list | paren | name }`
    fn index_base(&mut self, at: usize) -> Read<Expr> {
        if let Some(read) = self.call(at) {
            return Some(read);
        }
        let node = |this: &Self, kind, end| Some((Expr { kind, span: this.span(at, end) }, end));
        if let Some((items, end)) = self.bracketed(at, b'[', b']') {
            return node(self, ExprKind::List(items), end);
        }
        if let Some(open) = self.lit(at, "(") {
            if let Some((x, e)) = self.expr(self.skip(open)) {
                if let Some(end) = self.lit(self.skip(e), ")") {
                    return node(self, ExprKind::Paren(Box::new(x)), end);
                }
            }
        }
        let (id, end) = self.ident(at)?;
        node(self, ExprKind::Name(id.name), end)
    }

    /// `call = ${ ident ~ "(" ~ WS* ~ args? ~ WS* ~ ")" }`
    fn call(&mut self, at: usize) -> Read<Expr> {
        let e = self.ident_end(at)?;
        let mut p = self.skip(self.lit(e, "(")?);
        let callee = self.ident_at(at, e);
        let mut args = Vec::new();
        if let Some((a, e)) = self.args(p) {
            args = a;
            p = self.skip(e);
        }
        let end = self.lit(p, ")")?;
        Some((Expr { kind: ExprKind::Call { callee, args }, span: self.span(at, end) }, end))
    }

    /// `args = !{ arg ~ ("," ~ arg)* ~ ","? }`
    fn args(&mut self, at: usize) -> Read<Vec<Arg>> {
        let (first, mut end) = self.arg(at)?;
        let mut args = vec![first];
        while let Some((a, e)) = self.lit(self.skip(end), ",").and_then(|c| self.arg(self.skip(c))) {
            args.push(a);
            end = e;
        }
        let p = self.skip(end);
        Some((args, self.lit(p, ",").unwrap_or(p)))
    }

    /// `arg = { (arg_name ~ "=" ~ !"=")? ~ expr }`
    fn arg(&mut self, at: usize) -> Read<Arg> {
        let named = self.word(at).and_then(|end| {
            let eq = self.lit(self.skip(end), "=")?;
            let value = self.skip(eq);
            (self.at(value) != b'=')
                .then(|| (Ident { name: self.text[at..end].to_string(), span: self.span(at, end) }, value))
        });
        let (name, p) = match named {
            Some((name, value)) => (Some(name), value),
            None => (None, at),
        };
        let (value, end) = self.expr(p)?;
        Some((Arg { name, value }, end))
    }

    /// `if_expr = { kw_if ~ expr ~ branch ~ (kw_else ~ (if_expr | branch))? }`
    fn if_expr(&mut self, at: usize, after_kw: usize) -> Read<Expr> {
        let (cond, e) = self.expr(self.skip(after_kw))?;
        let (then, e) = self.body(self.skip(e))?;
        let mut end = self.skip(e);
        let mut otherwise = None;
        if let Some(e) = self.kw(end, "else") {
            let p = self.skip(e);
            let nested = match self.kw(p, "if") {
                Some(e) if self.else_if < MAX_ELSE_IF => {
                    self.else_if += 1;
                    let nested = self.if_expr(p, e);
                    self.else_if -= 1;
                    nested
                }
                Some(_) => {
                    self.bail = true;
                    None
                }
                None => None,
            };
            if let Some((x, e)) = nested {
                otherwise = Some(vec![Stmt::Expr(x)]);
                end = e;
            } else if let Some((b, e)) = self.body(p) {
                otherwise = Some(b);
                end = e;
            }
        }
        let kind = ExprKind::If { cond: Box::new(cond), then, otherwise };
        Some((Expr { kind, span: self.span(at, end) }, end))
    }

    /// `repeat_expr = { kw_repeat ~ (range | each | expr) ~ (kw_as ~ string)? ~ "{" ~ expr ~ "}" }`
    fn repeat_expr(&mut self, at: usize, after_kw: usize) -> Read<Expr> {
        let p = self.skip(after_kw);
        let (over, e) = match self.range_or_each(p) {
            Some(read) => read,
            None => self.expr(p).map(|(x, e)| (Over::Count(Box::new(x)), e))?,
        };
        let mut p = self.skip(e);
        let mut name_format = None;
        if let Some((s, e)) = self.kw(p, "as").and_then(|a| self.string(self.skip(a))) {
            name_format = Some(s);
            p = self.skip(e);
        }
        let (body, e) = self.expr(self.skip(self.lit(p, "{")?))?;
        let end = self.lit(self.skip(e), "}")?;
        let kind = ExprKind::Repeat(Repeat { over, name_format, body: Box::new(body) });
        Some((Expr { kind, span: self.span(at, end) }, end))
    }

    /// `range | each`: `range = { ident ~ kw_in ~ operand ~ ".." ~ operand }`, else
    /// `each = { ident ~ ("," ~ ident)* ~ kw_in ~ operand }`. Both read the same first operand
    /// from the same place, so it is read once: reading it again for `each` would double the
    /// work at every nested `repeat ... in repeat ...`.
    fn range_or_each(&mut self, at: usize) -> Read<Over> {
        let (first, mut end) = self.ident(at)?;
        let mut vars = vec![first];
        while let Some((id, e)) = self.lit(self.skip(end), ",").and_then(|c| self.ident(self.skip(c))) {
            vars.push(id);
            end = e;
        }
        let e = self.kw(self.skip(end), "in")?;
        let (list, end) = self.operand(self.skip(e))?;
        if vars.len() == 1 {
            if let Some((end_value, e)) =
                self.lit(self.skip(end), "..").and_then(|dots| self.operand(self.skip(dots)))
            {
                if let Some(var) = vars.pop() {
                    return Some((Over::Range { var, start: Box::new(list), end: Box::new(end_value) }, e));
                }
            }
        }
        Some((Over::Items { vars, list: Box::new(list) }, end))
    }

    // ---- train sections ----

    /// `cfg_map = { "{" ~ (cfg_entry ~ ","?)* ~ "}" }`
    fn cfg_map(&self, at: usize) -> Read<ConfigValue> {
        let mut p = self.skip(self.lit(at, "{")?);
        let mut entries = Vec::new();
        while let Some((key, (value, e))) = self.cfg_entry(p) {
            entries.push((key, value));
            let after = self.skip(e);
            p = self.skip(self.lit(after, ",").unwrap_or(after));
        }
        let end = self.lit(p, "}")?;
        Some((ConfigValue { kind: ConfigKind::Map(entries), span: self.span(at, end) }, end))
    }

    /// `cfg_entry = { (cfg_key | string) ~ ":" ~ cfg_value }`: its key, and its value.
    fn cfg_entry(&self, at: usize) -> Option<(Ident, (ConfigValue, usize))> {
        let (key, key_end) = match self.word(at) {
            Some(end) => (Ident { name: self.text[at..end].to_string(), span: self.span(at, end) }, end),
            None => self.string(at).map(|(s, end)| (Ident { name: s.value, span: s.span }, end))?,
        };
        let colon = self.lit(self.skip(key_end), ":")?;
        Some((key, self.cfg_value(self.skip(colon))?))
    }

    /// `cfg_call = @{ cfg_word ~ "(" ~ (!(")" | "\n" | "(") ~ ANY)* ~ ")" }`: where it ends.
    fn cfg_call(&self, at: usize) -> Option<usize> {
        let open = self.lit(self.word(at)?, "(")?;
        let close = open + self.b.get(open..)?.iter().position(|&c| matches!(c, b')' | b'\n' | b'('))?;
        (self.at(close) == b')').then_some(close + 1)
    }

    /// `cfg_value = _{ cfg_map | cfg_list | string | cfg_number | cfg_call | cfg_word }`
    fn cfg_value(&self, at: usize) -> Read<ConfigValue> {
        if let Some(read) = self.cfg_map(at) {
            return Some(read);
        }
        if let Some(read) = self.cfg_list(at) {
            return Some(read);
        }
        let scalar = |text: String, quoted, end| {
            Some((ConfigValue { kind: ConfigKind::Scalar { text, quoted }, span: self.span(at, end) }, end))
        };
        if let Some((s, end)) = self.string(at) {
            return scalar(s.value, true, end);
        }
        if let Some(end) = self.cfg_number(at) {
            return scalar(self.text[at..end].replace('_', ""), false, end);
        }
        let end = self.cfg_call(at).or_else(|| self.word(at))?;
        scalar(self.text[at..end].to_string(), false, end)
    }

    /// `cfg_list = { "[" ~ (cfg_value ~ ("," ~ cfg_value)*)? ~ ","? ~ "]" }`
    fn cfg_list(&self, at: usize) -> Read<ConfigValue> {
        let mut p = self.skip(self.lit(at, "[")?);
        let mut items = Vec::new();
        if let Some((first, mut end)) = self.cfg_value(p) {
            items.push(first);
            while let Some((v, e)) = self.lit(self.skip(end), ",").and_then(|c| self.cfg_value(self.skip(c)))
            {
                items.push(v);
                end = e;
            }
            p = self.skip(end);
        }
        p = self.skip(self.lit(p, ",").unwrap_or(p));
        let end = self.lit(p, "]")?;
        Some((ConfigValue { kind: ConfigKind::List(items), span: self.span(at, end) }, end))
    }

    /// `cfg_number = @{ "-"? ~ D ~ (D | "_")* ~ ("." ~ D+)? ~ exponent? ~ !ident_char }`
    fn cfg_number(&self, at: usize) -> Option<usize> {
        let start = at + usize::from(self.at(at) == b'-');
        let mut end = self.int(start)?;
        if self.at(end) == b'.' {
            end = self.digits(end + 1).unwrap_or(end);
        }
        end = self.exponent(end).unwrap_or(end);
        (!ident_char(self.at(end))).then_some(end)
    }
}

/// pest's Pratt table: `||`, `&&`, comparisons, `+ -`, `* / %`, from loosest.
fn precedence(op: BinOp) -> u8 {
    match op {
        BinOp::Or => 1,
        BinOp::And => 2,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 3,
        BinOp::Add | BinOp::Sub => 4,
        BinOp::Mul | BinOp::Div | BinOp::Rem => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::dsl::parse_file_with_pest;

    /// Every `.wick` file under `dir`, recursively.
    fn wick_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                wick_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "wick") {
                out.push(path);
            }
        }
    }

    /// Both readings of `text`: the same AST when pest reads it; nothing when pest refuses it.
    fn agree(name: &str, text: &str) -> bool {
        if crate::front::dsl::check_nesting(text, FileId(0), 0).is_err() {
            return false;
        }
        let fast = Descent::new(text, FileId(0), 0).file();
        match (parse_file_with_pest(text, FileId(0)), fast) {
            (Ok(pest), Some(fast)) => {
                assert_eq!(pest, fast, "{name}: the readings differ");
                true
            }
            (Err(e), Some(_)) => panic!("{name}: read here, refused by pest: {}", e.message),
            (_, None) => false,
        }
    }

    #[test]
    fn the_forms_of_repeat_and_awkward_spacing_read_as_pest_reads_them() {
        let body = |line: &str| format!("model M {{\n input x: [1, 4]\n y = x |> {line}\n output y\n}}\n");
        for line in [
            "repeat i in 0..3 { Linear(4) }",
            "repeat i in 0 .. n + 1 as \"fc{i}\" { Linear(4) }",
            "repeat c in cfg { Linear(c) }",
            "repeat i, c in enumerate(cfg) { Linear(c) }",
            "repeat i in cfg[0] { ReLU }",
            "repeat 2 { ReLU }",
            "a: Linear(4)  # a comment\n |> ReLU",
            "\"block1-0\" : Linear(4, bias = true ,)",
            "[...repeat 2 { ReLU }, 2: LayerNorm(4)]",
            "if !a && -b < 3 * (c - 1) % 2 { ReLU } else if d { GELU } else { Tanh }",
            "f(x)[1][-2] |> (ReLU |> Linear(4))",
        ] {
            let text = body(line);
            assert!(
                agree(line, &text),
                "{line}: not read (pest: {:?})",
                parse_file_with_pest(&text, FileId(0)).err()
            );
        }
    }

    #[test]
    fn train_sections_with_quoted_keys_and_scheme_calls_read_as_pest_reads_them() {
        for section in [
            "init_weights: { \"**.weight\": normal(0, 0.02), \"**.bias\": zeros }",
            "init_weights: { \"a.b\" : kaiming_normal(mode=\"fan_out\"), c: ones() }, epochs: 3",
            "optimizer: { name: adam, lr: 1e-3 }, data: [a, \"b\", -2_0.5e3]",
        ] {
            let text = format!("model M {{\n input x: [1, 4]\n output x\n}}\ntrain {{ {section} }}\n");
            assert!(agree(section, &text), "{section}: not read");
        }
    }

    #[test]
    fn every_spec_reads_as_pest_reads_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["specs", "std", "tests", "benches", "examples", "docs"] {
            wick_files(&root.join(dir), &mut files);
        }
        assert!(files.len() > 50, "found only {} specs", files.len());
        let mut read = 0;
        for path in &files {
            let text = std::fs::read_to_string(path).unwrap();
            let name = path.display().to_string();
            let pest_ok = parse_file_with_pest(&text, FileId(0)).is_ok();
            let fast_ok = agree(&name, &text);
            assert_eq!(pest_ok, fast_ok, "{name}: pest read it: {pest_ok}; here: {fast_ok}");
            read += usize::from(fast_ok);
        }
        assert!(read > 50, "{read}");
    }
}
