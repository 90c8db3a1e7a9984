//! Expressions: pipelines, labels, operators by pest's precedence, calls, `if` and `repeat`.

use super::*;

impl<'t> Descent<'t> {
    // ---- expressions ----

    /// `expr = { stage ~ ("|>" ~ stage)* }`; one stage is the stage itself.
    pub(super) fn expr(&mut self, at: usize) -> Read<Expr> {
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
    pub(super) fn stage(&mut self, at: usize) -> Read<Expr> {
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
    pub(super) fn label(&self, at: usize) -> Option<(Ident, usize)> {
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
    pub(super) fn operand(&mut self, at: usize) -> Read<Expr> {
        let (first, e, mut operators) = self.prefixed(at)?;
        let mut end = e;
        let mut after = self.skip(e);
        // Most operands are one primary: no stacks for them, the same reading as below.
        if self.infix(after).is_none() {
            if operators > crate::front::dsl::MAX_OPERATORS {
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
        if operators > crate::front::dsl::MAX_OPERATORS {
            self.bail = true;
        }
        while !ops.is_empty() {
            self.reduce(&mut operands, &mut ops);
        }
        operands.pop().map(|x| (x, end))
    }

    pub(super) fn reduce(&self, operands: &mut Vec<Expr>, ops: &mut Vec<BinOp>) {
        let (Some(op), Some(rhs), Some(lhs)) = (ops.pop(), operands.pop(), operands.pop()) else { return };
        let span = lhs.span.to(rhs.span);
        operands.push(Expr { kind: ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span });
    }

    /// `prefix* ~ primary`: the primary with its prefix operators applied, innermost last,
    /// where its pair ends, and how many prefixes it has.
    pub(super) fn prefixed(&mut self, at: usize) -> Option<(Expr, usize, usize)> {
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
    pub(super) fn infix(&self, at: usize) -> Option<(BinOp, usize)> {
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
    pub(super) fn primary(&mut self, at: usize) -> Read<Expr> {
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
    pub(super) fn indexed(&mut self, at: usize) -> Read<Expr> {
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
    pub(super) fn index_base(&mut self, at: usize) -> Read<Expr> {
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
    pub(super) fn call(&mut self, at: usize) -> Read<Expr> {
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
    pub(super) fn args(&mut self, at: usize) -> Read<Vec<Arg>> {
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
    pub(super) fn arg(&mut self, at: usize) -> Read<Arg> {
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
    pub(super) fn if_expr(&mut self, at: usize, after_kw: usize) -> Read<Expr> {
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
    pub(super) fn repeat_expr(&mut self, at: usize, after_kw: usize) -> Read<Expr> {
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
    pub(super) fn range_or_each(&mut self, at: usize) -> Read<Over> {
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
