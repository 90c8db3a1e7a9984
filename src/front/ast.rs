//! The abstract syntax tree shared by both surfaces (`.wick` text and YAML).
//!
//! Every node carries the [`Span`] it came from, so elaboration and checking can
//! point at the spec whichever surface it was written in.

use super::span::{FileId, Span};

/// A name as written, with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// One parsed file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Module {
    pub items: Vec<Item>,
    /// The file it was parsed from, so a diagnostic about the whole file can point into it.
    pub file: FileId,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `use "path.wick"`
    Use { path: String, span: Span },
    /// `dim N` or `dim N = 1`: a symbolic dimension with an optional example value.
    Dim { name: Ident, example: Option<Expr> },
    /// `block` and `model` definitions share one shape.
    Def(Def),
    /// `train { ... }`: how to train the file's model (read by `wick train`, not elaborated).
    Train(ConfigValue),
}

/// A configuration value as written (a `train` section, or a YAML config file): mappings,
/// lists and scalars, each with its span, so a bad key or value points at its line.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigValue {
    pub kind: ConfigKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConfigKind {
    Map(Vec<(Ident, ConfigValue)>),
    List(Vec<ConfigValue>),
    /// A scalar's text; `quoted` ones are strings, others may read as numbers or booleans.
    Scalar {
        text: String,
        quoted: bool,
    },
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefKind {
    Block,
    Model,
}

/// A `block` or `model`: typed parameters, an optional output type, a body.
#[derive(Debug, Clone, PartialEq)]
pub struct Def {
    pub kind: DefKind,
    pub name: Ident,
    pub params: Vec<Param>,
    /// The declared output type of a block: checked as an assertion.
    pub returns: Option<TypeExpr>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// `name: type = default`
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TypeKind {
    Int,
    Float,
    Bool,
    Str,
    /// An op or a block, with arguments or not (`act: op = ReLU`), applied with `|>`.
    Op,
    /// `[int]`: a list whose items are all of one type.
    List(Box<TypeExpr>),
    /// `[N, c, h, w] of f32`: each dim is a pattern; a fresh name binds, anything else must equal.
    Tensor {
        dims: Vec<Expr>,
        dtype: Option<Ident>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `a = expr` or `a, b = expr`
    Let { names: Vec<Ident>, value: Expr },
    /// `input x: [N, 784] of f32`
    Input { name: Ident, ty: TypeExpr },
    /// `output y`, `output y: [N, 10]`, `output logits = expr`, `output logits, h, c`
    Output(Vec<OutputItem>),
    /// `return expr` (blocks)
    Return { value: Expr, span: Span },
    /// `assert cond, "message {value}"`
    Assert { cond: Expr, message: Option<StrLit>, span: Span },
    /// A bare expression: the value of an `if` branch, or a layer applied for its effect.
    Expr(Expr),
}

/// One named model output, with an optional type assertion and value.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputItem {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub value: Option<Expr>,
}

/// A string literal; `{name}` inside it interpolates a value.
#[derive(Debug, Clone, PartialEq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

/// A call argument, positional or `name=value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

/// How many times a `repeat` runs and what its index is called.
#[derive(Debug, Clone, PartialEq)]
pub struct Repeat {
    pub over: Over,
    /// `as "fc{i}"`: how each iteration is named in paths (default: its index from 0).
    pub name_format: Option<StrLit>,
    pub body: Box<Expr>,
}

/// What a `repeat` goes over.
#[derive(Debug, Clone, PartialEq)]
pub enum Over {
    /// `repeat n`: n times.
    Count(Box<Expr>),
    /// `repeat i in a..b`: `i` from `a` to `b - 1`.
    Range { var: Ident, start: Box<Expr>, end: Box<Expr> },
    /// `repeat c in cfg`, `repeat i, c in enumerate(cfg)`: each item of a list, bound to the
    /// one name or unpacked into several.
    Items { vars: Vec<Ident>, list: Box<Expr> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `none`: no op, for an `op` parameter.
    None,
    Str(String),
    Name(String),
    /// `[a, b, c]`: a list value, or in a pipe a sequence of layers numbered 0, 1, …
    List(Vec<Expr>),
    /// `Op(args)`, `Block(args)` or a builtin function.
    Call {
        callee: Ident,
        args: Vec<Arg>,
    },
    Unary {
        op: UnOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `head |> stage |> stage`
    Pipe {
        head: Box<Expr>,
        stages: Vec<Expr>,
    },
    /// `label: stage`: names a layer (or a group of layers) in parameter paths.
    Labelled {
        label: Ident,
        body: Box<Expr>,
    },
    /// `...stage` in a list or a parenthesised chain: its layers (a block call's, a repeat's,
    /// a nested sequence's) take the next numbers of that sequence, with no group of their own.
    Spread(Box<Expr>),
    /// `(expr)`: kept so a parenthesised chain can act as one numbered group.
    Paren(Box<Expr>),
    /// Compile-time `if`; each branch is a list of statements ending in its value.
    If {
        cond: Box<Expr>,
        then: Vec<Stmt>,
        otherwise: Option<Vec<Stmt>>,
    },
    Repeat(Repeat),
    /// `list[i]`: an item of a list value (a negative index counts from the end).
    Index {
        base: Box<Expr>,
        index: Box<Expr>,
    },
}
