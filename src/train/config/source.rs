//! Where a run's configuration comes from: a YAML file (`--config`) or the spec's own
//! `train` section. Either way a bad key or value is rendered as a diagnostic at its line.

use std::path::{Path, PathBuf};

use super::TrainConfig;
use crate::diag::{self, Diagnostics, RenderStyle};
use crate::front::ast::ConfigValue;
use crate::front::span::SourceMap;

/// Why no configuration could be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file could not be read, or there is no configuration at all.
    #[error("{0}")]
    Usage(String),
    /// The configuration (or the spec) has errors, rendered.
    #[error("{0}")]
    Invalid(String),
}

/// The configuration for training the spec `compiled` (read from `spec`), and the folder its
/// relative paths start from.
pub fn read_config(
    spec: &str,
    compiled: &crate::Compiled,
    config_file: Option<&str>,
    style: RenderStyle,
) -> Result<(TrainConfig, PathBuf), SourceError> {
    read_config_value(spec, compiled, config_file, style).map(|(config, _, dir)| (config, dir))
}

/// [`read_config`], with the configuration's values as written too (a sweep changes some of
/// them and reads the result again).
pub fn read_config_value(
    spec: &str,
    compiled: &crate::Compiled,
    config_file: Option<&str>,
    style: RenderStyle,
) -> Result<(TrainConfig, ConfigValue, PathBuf), SourceError> {
    let dir = |p: &str| Path::new(p).parent().map(Path::to_path_buf).unwrap_or_default();
    let mut file_sources = SourceMap::new();
    let (value, sources) = match config_file {
        Some(file) => {
            let cannot = |e: String| SourceError::Usage(format!("cannot read `{file}`: {e}"));
            let bytes =
                crate::train::files::read_regular(Path::new(file)).map_err(|e| cannot(e.to_string()))?;
            let text = String::from_utf8(bytes).map_err(|e| {
                cannot(format!("it is not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
            })?;
            let id = file_sources.add(file, Some(PathBuf::from(file)), text.clone());
            let value =
                crate::front::yaml::parse_config(&text, id).map_err(|d| invalid(d, &file_sources, style))?;
            (value, &file_sources)
        }
        None => {
            if compiled.diagnostics.has_errors() {
                return Err(SourceError::Invalid(compiled.render_diagnostics(style)));
            }
            let value = compiled.train.clone().ok_or_else(|| {
                SourceError::Usage(format!(
                    "`{spec}` has no `train` section; add one (`train {{ data: {{ csv: \"...\", target: \"...\" }} }}`) or pass `--config FILE`"
                ))
            })?;
            (value, &compiled.sources)
        }
    };
    let config = TrainConfig::from_value(&value).map_err(|e| invalid(e.diagnostic(), sources, style))?;
    Ok((config, value, dir(config_file.unwrap_or(spec))))
}

fn invalid(d: diag::Diagnostic, sources: &SourceMap, style: RenderStyle) -> SourceError {
    let mut diags = Diagnostics::default();
    diags.push(d);
    SourceError::Invalid(diag::render_all(&diags, sources, style))
}
