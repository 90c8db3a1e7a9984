//! Samples to a file, the kind chosen by its extension: `.npy` (one output), `.safetensors`
//! (every output, keyed by name) or `.png` (one image-shaped output, as a grid).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::SampleError;
use crate::image::{grid, png};
use crate::train::files;

/// The kinds of file samples are written to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Npy,
    Safetensors,
    Png,
}

impl Format {
    /// The format `path`'s extension names; checked before any sampling is done.
    pub fn of(path: &Path) -> Result<Format, SampleError> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("npy") => Ok(Format::Npy),
            Some("safetensors") => Ok(Format::Safetensors),
            Some("png") => Ok(Format::Png),
            _ => Err(SampleError::Usage(format!(
                "cannot tell what to write to `{}`: name a .npy, .safetensors or .png file",
                path.display()
            ))),
        }
    }
}

/// Writes `outputs` to `path` (replacing it whole, in a folder that must exist). A PNG maps
/// `range` onto black..white.
pub fn write(path: &Path, outputs: &BTreeMap<String, Tensor>, range: (f32, f32)) -> Result<(), SampleError> {
    let format = Format::of(path)?;
    let on_cpu = outputs
        .iter()
        .map(|(name, t)| Ok((name.clone(), t.to_device(&Device::Cpu)?)))
        .collect::<candle_core::Result<HashMap<_, _>>>()?;
    let written = match format {
        Format::Safetensors => files::save_safetensors(path, &on_cpu),
        Format::Npy => {
            let t = only(&on_cpu, "npy")?;
            files::replace_file(path, |tmp| t.write_npy(tmp).map_err(std::io::Error::other))
        }
        Format::Png => {
            let bytes = png_grid(only(&on_cpu, "png")?, range, None)?;
            files::replace_file(path, |tmp| std::fs::write(tmp, &bytes))
        }
    };
    written.map_err(|e| SampleError::Usage(format!("cannot write `{}`: {e}", path.display())))
}

/// The one output a single-array file can hold.
fn only<'a>(outputs: &'a HashMap<String, Tensor>, extension: &str) -> Result<&'a Tensor, SampleError> {
    match outputs.values().collect::<Vec<_>>().as_slice() {
        [t] => Ok(t),
        _ => Err(SampleError::Usage(format!(
            "the model has {} outputs ({}): a .{extension} file holds one; write a .safetensors file",
            outputs.len(),
            names(outputs)
        ))),
    }
}

fn names(outputs: &HashMap<String, Tensor>) -> String {
    let mut names: Vec<&str> = outputs.keys().map(String::as_str).collect();
    names.sort_unstable();
    names.join(", ")
}

/// A `[n, c, h, w]` tensor (c = 1 or 3) as a PNG grid of `columns` columns (`None`: as
/// square as n allows), `range` mapped onto black..white.
pub fn png_grid(t: &Tensor, range: (f32, f32), columns: Option<usize>) -> Result<Vec<u8>, SampleError> {
    let &[n, c, h, w] = t.dims() else {
        return Err(SampleError::Usage(format!(
            "a PNG grid needs images [n, channels, height, width]; the output is {:?}",
            t.dims()
        )));
    };
    let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let columns = columns.unwrap_or_else(|| grid::square_columns(n));
    let image = grid::tile(&values, [n, c, h, w], range, columns, 1)
        .map_err(|e| SampleError::Usage(format!("cannot draw the output {:?}: {e}", t.dims())))?;
    png::encode(image.width, image.height, image.color, &image.pixels)
        .map_err(|e| SampleError::Usage(e.to_string()))
}
