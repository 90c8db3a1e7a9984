//! Serde over spanned [`ConfigValue`]s: one reader for the `train` section of a spec (either
//! surface) and for `--config` YAML files, whose errors point at the key or value at fault and
//! suggest the closest accepted key.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use crate::diag::{did_you_mean, Diagnostic};
use crate::front::ast::{ConfigKind, ConfigValue};
use crate::front::span::Span;
use crate::ops::init_scheme::Scheme;

/// A configuration error and where it is, once known.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub message: String,
    pub span: Option<Span>,
    pub help: Option<String>,
    /// The unknown key the message is about, so the mapping holding it can point at it.
    unknown_key: Option<String>,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError { message: message.into(), span: None, help: None, unknown_key: None }
    }

    pub(crate) fn at(mut self, span: Span) -> ConfigError {
        self.span.get_or_insert(span);
        self
    }

    /// As a diagnostic (`E0501`) for the spec's renderer.
    pub fn diagnostic(&self) -> Diagnostic {
        let mut d = Diagnostic::error("E0501", format!("training configuration: {}", self.message));
        if let Some(span) = self.span {
            d = d.at(span, "here");
        }
        if let Some(help) = &self.help {
            d = d.help(help.clone());
        }
        d
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

fn unknown(kind: &str, name: &str, expected: &'static [&'static str]) -> ConfigError {
    let mut e = ConfigError::new(format!("unknown {kind} `{name}`"));
    e.help = Some(match did_you_mean(name, expected.iter().copied()) {
        Some(close) => format!("did you mean `{close}`? accepted: {}", expected.join(", ")),
        None => format!("accepted: {}", expected.join(", ")),
    });
    e
}

impl de::Error for ConfigError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ConfigError::new(msg.to_string())
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        ConfigError { unknown_key: Some(field.to_string()), ..unknown("key", field, expected) }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        unknown("name", variant, expected)
    }
}

/// Read `T` from a configuration value.
pub fn from_value<T: DeserializeOwned>(value: &ConfigValue) -> Result<T, ConfigError> {
    T::deserialize(Node(value))
}

/// A value written as a bare name (`optimizer: adam`) read as the mapping `{name: adam}`, so
/// the name-tagged sections take either form.
pub fn by_name<'de, T: DeserializeOwned, D: de::Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    struct NameOrMap<T>(std::marker::PhantomData<T>);
    impl<'de, T: DeserializeOwned> Visitor<'de> for NameOrMap<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a name or a mapping with `name`")
        }
        fn visit_str<E: de::Error>(self, name: &str) -> Result<T, E> {
            let map = [("name", name)].into_iter().map(|(k, v)| (k, v.to_string()));
            T::deserialize(de::value::MapDeserializer::<_, E>::new(map))
        }
        fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<T, M::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(NameOrMap(std::marker::PhantomData))
}

/// A mapping of globs to initialisation schemes (`{"**.bias": zeros, "**.weight": normal(0, 0.02)}`),
/// in the order written; a scheme that does not read points at its value.
pub fn schemes_by_glob<'de, D: de::Deserializer<'de>>(d: D) -> Result<Vec<(String, Scheme)>, D::Error> {
    struct Read(Scheme);
    impl<'de> de::Deserialize<'de> for Read {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Read, D::Error> {
            let text = String::deserialize(d)?;
            Scheme::parse(&text).map(Read).map_err(de::Error::custom)
        }
    }
    struct Globs;
    impl<'de> Visitor<'de> for Globs {
        type Value = Vec<(String, Scheme)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping of parameter globs to initialisations")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut schemes = Vec::new();
            while let Some((glob, Read(scheme))) = map.next_entry::<String, Read>()? {
                schemes.push((glob, scheme));
            }
            Ok(schemes)
        }
    }
    d.deserialize_map(Globs)
}

#[derive(Clone, Copy)]
struct Node<'a>(&'a ConfigValue);

impl<'a> Node<'a> {
    fn scalar(&self) -> Option<&'a str> {
        match &self.0.kind {
            ConfigKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    fn found(&self) -> String {
        match &self.0.kind {
            ConfigKind::Map(_) => "a mapping".into(),
            ConfigKind::List(_) => "a list".into(),
            ConfigKind::Null => "nothing".into(),
            ConfigKind::Scalar { text, .. } => format!("`{text}`"),
        }
    }

    fn expected(&self, what: &str) -> ConfigError {
        ConfigError::new(format!("expected {what}, found {}", self.found())).at(self.0.span)
    }

    /// Errors from reading this node point at it unless they already point somewhere inside;
    /// an unknown key points at that key.
    fn locate<T>(&self, r: Result<T, ConfigError>) -> Result<T, ConfigError> {
        r.map_err(|mut e| {
            if let (None, Some(name), ConfigKind::Map(entries)) = (e.span, &e.unknown_key, &self.0.kind) {
                e.span = entries.iter().find(|(k, _)| &k.name == name).map(|(k, _)| k.span);
            }
            e.at(self.0.span)
        })
    }
}

impl<'de> de::Deserializer<'de> for Node<'_> {
    type Error = ConfigError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        let r = match &self.0.kind {
            ConfigKind::Null => v.visit_unit(),
            ConfigKind::Map(entries) => v.visit_map(Entries { entries, next: 0 }),
            ConfigKind::List(items) => v.visit_seq(Items { items: items.iter() }),
            ConfigKind::Scalar { text, quoted: true } => v.visit_str(text),
            ConfigKind::Scalar { text, quoted: false } => match text.as_str() {
                "true" => v.visit_bool(true),
                "false" => v.visit_bool(false),
                t => match (t.parse::<i64>(), t.parse::<f64>()) {
                    (Ok(i), _) => v.visit_i64(i),
                    (_, Ok(f)) => v.visit_f64(f),
                    _ => v.visit_str(t),
                },
            },
        };
        self.locate(r)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        match self.scalar().and_then(|t| t.parse::<f64>().ok()) {
            Some(f) => self.locate(v.visit_f64(f)),
            None => Err(self.expected("a number")),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        self.deserialize_f64(v)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        match self.scalar() {
            Some("true") => v.visit_bool(true),
            Some("false") => v.visit_bool(false),
            _ => Err(self.expected("`true` or `false`")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        match self.scalar() {
            Some(t) => self.locate(v.visit_str(t)),
            None => Err(self.expected("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        match self.0.kind {
            ConfigKind::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ConfigError> {
        let r = match &self.0.kind {
            ConfigKind::Scalar { text, .. } => v.visit_enum(text.as_str().into_deserializer()),
            ConfigKind::Map(entries) if entries.len() == 1 => v.visit_enum(Variant(&entries[0])),
            _ => return Err(self.expected("a name, or a mapping with one key")),
        };
        self.locate(r)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char bytes byte_buf unit unit_struct
        newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct Entries<'a> {
    entries: &'a [(crate::front::ast::Ident, ConfigValue)],
    next: usize,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = ConfigError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, ConfigError> {
        let Some((key, _)) = self.entries.get(self.next) else { return Ok(None) };
        let name: de::value::StrDeserializer<ConfigError> = key.name.as_str().into_deserializer();
        seed.deserialize(name).map(Some).map_err(|e| e.at(key.span))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ConfigError> {
        let Some((_, value)) = self.entries.get(self.next) else {
            return Err(ConfigError::new("a value was read before its key"));
        };
        self.next += 1;
        seed.deserialize(Node(value)).map_err(|e| e.at(value.span))
    }
}

struct Items<'a> {
    items: std::slice::Iter<'a, ConfigValue>,
}

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = ConfigError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConfigError> {
        match self.items.next() {
            Some(item) => seed.deserialize(Node(item)).map(Some).map_err(|e| e.at(item.span)),
            None => Ok(None),
        }
    }
}

/// `{variant: content}` as an externally tagged enum value.
struct Variant<'a>(&'a (crate::front::ast::Ident, ConfigValue));

impl<'de, 'a> de::EnumAccess<'de> for Variant<'a> {
    type Error = ConfigError;
    type Variant = Node<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Node<'a>), ConfigError> {
        let (key, value) = self.0;
        let name: de::value::StrDeserializer<ConfigError> = key.name.as_str().into_deserializer();
        Ok((seed.deserialize(name).map_err(|e| e.at(key.span))?, Node(value)))
    }
}

impl<'de> de::VariantAccess<'de> for Node<'_> {
    type Error = ConfigError;

    fn unit_variant(self) -> Result<(), ConfigError> {
        match self.0.kind {
            ConfigKind::Null => Ok(()),
            _ => Err(self.expected("nothing")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, ConfigError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, ConfigError> {
        de::Deserializer::deserialize_seq(self, v)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ConfigError> {
        de::Deserializer::deserialize_map(self, v)
    }
}
