//! Items, types, statements and train sections: the rules above expressions.

use super::*;

impl<'t> Descent<'t> {
    // ---- items ----

    /// `item = _{ use_decl | dim_decl | block_def | model_def | train_def }`
    pub(super) fn item(&mut self, at: usize) -> Read<Option<Item>> {
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
    pub(super) fn def(&mut self, start: usize, after_kw: usize, kind: DefKind) -> Read<Def> {
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
    pub(super) fn params(&mut self, at: usize) -> Read<Vec<Param>> {
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
    pub(super) fn param(&mut self, at: usize) -> Read<Param> {
        let (name, e) = self.ident(at)?;
        let colon = self.lit(self.skip(e), ":")?;
        let (ty, e) = self.type_expr(self.skip(colon))?;
        let at = self.skip(e);
        let default = self.lit(at, "=").and_then(|eq| self.expr(self.skip(eq)));
        let end = default.as_ref().map_or(at, |(_, e)| *e);
        Some((Param { name, ty, default: default.map(|(x, _)| x) }, end))
    }

    /// `body = { "{" ~ stmt* ~ "}" }` (and `branch`, the same).
    pub(super) fn body(&mut self, at: usize) -> Read<Vec<Stmt>> {
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
    pub(super) fn type_expr(&mut self, at: usize) -> Read<TypeExpr> {
        self.value_type(at).or_else(|| self.tensor_type(at))
    }

    /// `scalar_type` or `list_type`.
    pub(super) fn value_type(&mut self, at: usize) -> Read<TypeExpr> {
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
    pub(super) fn tensor_type(&mut self, at: usize) -> Read<TypeExpr> {
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
    pub(super) fn bracketed(&mut self, at: usize, open: u8, close: u8) -> Read<Vec<Expr>> {
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
    pub(super) fn stmt(&mut self, at: usize) -> Read<Stmt> {
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
    pub(super) fn input_stmt(&mut self, after_kw: usize) -> Read<Stmt> {
        let (name, e) = self.ident(self.skip(after_kw))?;
        let colon = self.lit(self.skip(e), ":")?;
        let (ty, end) = self.tensor_type(self.skip(colon))?;
        Some((Stmt::Input { name, ty }, end))
    }

    /// `output_stmt = { kw_output ~ output_item ~ ("," ~ output_item)* }`
    pub(super) fn output_stmt(&mut self, after_kw: usize) -> Read<Stmt> {
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
    pub(super) fn output_item(&mut self, at: usize) -> Read<OutputItem> {
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
    pub(super) fn assigned(&mut self, at: usize) -> Read<Expr> {
        let p = self.skip(self.lit(at, "=")?);
        if self.at(p) == b'=' {
            return None;
        }
        self.expr(p)
    }

    /// `let_stmt = { ident ~ ("," ~ ident)* ~ "=" ~ !"=" ~ expr }`
    pub(super) fn let_stmt(&mut self, at: usize) -> Read<Stmt> {
        let (first, mut end) = self.ident(at)?;
        let mut names = vec![first];
        while let Some((id, e)) = self.lit(self.skip(end), ",").and_then(|c| self.ident(self.skip(c))) {
            names.push(id);
            end = e;
        }
        let (value, end) = self.assigned(self.skip(end))?;
        Some((Stmt::Let { names, value }, end))
    }

    // ---- train sections ----

    /// `cfg_map = { "{" ~ (cfg_entry ~ ","?)* ~ "}" }`
    pub(super) fn cfg_map(&self, at: usize) -> Read<ConfigValue> {
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
    pub(super) fn cfg_entry(&self, at: usize) -> Option<(Ident, (ConfigValue, usize))> {
        let (key, key_end) = match self.word(at) {
            Some(end) => (Ident { name: self.text[at..end].to_string(), span: self.span(at, end) }, end),
            None => self.string(at).map(|(s, end)| (Ident { name: s.value, span: s.span }, end))?,
        };
        let colon = self.lit(self.skip(key_end), ":")?;
        Some((key, self.cfg_value(self.skip(colon))?))
    }

    /// `cfg_call = @{ cfg_word ~ "(" ~ (!(")" | "\n" | "(") ~ ANY)* ~ ")" }`: where it ends.
    pub(super) fn cfg_call(&self, at: usize) -> Option<usize> {
        let open = self.lit(self.word(at)?, "(")?;
        let close = open + self.b.get(open..)?.iter().position(|&c| matches!(c, b')' | b'\n' | b'('))?;
        (self.at(close) == b')').then_some(close + 1)
    }

    /// `cfg_value = _{ cfg_map | cfg_list | string | cfg_number | cfg_call | cfg_word }`
    pub(super) fn cfg_value(&self, at: usize) -> Read<ConfigValue> {
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
    pub(super) fn cfg_list(&self, at: usize) -> Read<ConfigValue> {
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
    pub(super) fn cfg_number(&self, at: usize) -> Option<usize> {
        let start = at + usize::from(self.at(at) == b'-');
        let mut end = self.int(start)?;
        if self.at(end) == b'.' {
            end = self.digits(end + 1).unwrap_or(end);
        }
        end = self.exponent(end).unwrap_or(end);
        (!ident_char(self.at(end))).then_some(end)
    }
}
