//! Images as examples: a folder with one sub-folder per class (torchvision's `ImageFolder`:
//! classes are the sub-folders sorted by name), or a CSV of paths and labels. PNG, JPEG and
//! BMP are decoded by the `image` crate, made grayscale or RGB, resized, center-cropped,
//! scaled to [0, 1] and normalised per channel: `[N, C, H, W]` f32 features.
//!
//! A header that lies cannot make a decoder allocate without bound: an image's sides and
//! the decoder's allocations are limited before its pixels are read, and a file that cannot
//! be read or decoded is an error naming it.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView, ImageReader, Limits};

use super::convert::{Named, Raw};
use super::{csv, DataError};
use crate::train::files;

/// The largest side an image may declare, and its largest pixel count (a 64-megapixel photo
/// passes; a header claiming 60,000 × 60,000 does not).
const MAX_SIDE: u32 = 1 << 14;
const MAX_PIXELS: u64 = 1 << 26;
/// What one decode may allocate: 64 Mpx of 16-bit RGBA.
const MAX_DECODE_BYTES: u64 = MAX_PIXELS * 8;

/// How images become features: `size`, `center_crop`, `channels`, `mean`, `std` of `data:`.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageOptions {
    /// Resize to `[h, w]`; one side `n`: the shorter side to `n`, keeping the aspect ratio
    /// (torchvision's `Resize`). `None`: every image must have the same size.
    pub size: Option<Size>,
    /// Then cut `[h, w]` from the middle.
    pub center_crop: Option<(usize, usize)>,
    /// 1: grayscale, 3: RGB.
    pub channels: usize,
    /// Per-channel normalisation of the [0, 1] pixels: `(p - mean) / std`.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    Exact(usize, usize),
    ShorterSide(usize),
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions { size: None, center_crop: None, channels: 3, mean: vec![0.0], std: vec![1.0] }
    }
}

/// A mismatch between an `images` source and the model, with the folder named and the
/// settings that change the images' shape; other errors as they are.
pub fn with_image_hint(source: &super::Source, e: DataError) -> DataError {
    match (source, e) {
        (super::Source::Images { path, .. }, DataError::Mismatch(m)) => DataError::Mismatch(format!(
            "the images of `{path}` as loaded: {m} (`data.size`, `center_crop` and `channels` set \
             their [C, H, W])"
        )),
        (_, e) => e,
    }
}

/// The images under `path` (a folder of class folders, or a CSV with a `path` column and a
/// `label` column, or the one `label` names) with class indices; the class names, indexed as
/// `classes` when given (the training data's).
pub(super) fn read(
    path: &Path,
    label: Option<&str>,
    options: &ImageOptions,
    classes: Option<&[String]>,
) -> Result<(Raw, Option<Vec<String>>), DataError> {
    let (files, labels, names) = match path.is_dir() {
        true => listed_folder(path, classes)?,
        false => listed_csv(path, label.unwrap_or("label"), classes)?,
    };
    let shown = path.display().to_string();
    if files.is_empty() {
        return Err(DataError::Config(format!("`{shown}` lists no images")));
    }
    let Pixels { values, shape: (c, h, w) } = decode_all(&files, options)?;
    let n = files.len();
    let x = Tensor::from_vec(values, (n, c, h, w), &Device::Cpu)?;
    let y = Tensor::from_vec(labels, n, &Device::Cpu)?;
    let raw = Raw {
        x: Named::new(format!("the images of `{shown}`"), x),
        y: Some(Named::new(format!("the labels of `{shown}`"), y)),
    };
    Ok((raw, names))
}

/// The image files of a class folder each (sorted, so the order is the same on every
/// machine), the class index of each, and the class names. Files that are not PNG, JPEG or
/// BMP by their extension are passed over, as `ImageFolder` does.
fn listed_folder(dir: &Path, known: Option<&[String]>) -> Result<Listed, DataError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| DataError::Io { path, source }
    };
    let mut folders: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        if entry.file_type().map_err(io(&entry.path()))?.is_dir() {
            folders.push((entry.file_name().to_string_lossy().into_owned(), entry.path()));
        }
    }
    folders.sort();
    if folders.is_empty() {
        return Err(DataError::Config(format!(
            "`{}` has no class folders: put each class's images in a folder of its own",
            dir.display()
        )));
    }
    let names: Vec<String> = match known {
        Some(known) => known.to_vec(),
        None => folders.iter().map(|(n, _)| n.clone()).collect(),
    };
    let (mut files, mut labels) = (Vec::new(), Vec::new());
    for (name, folder) in &folders {
        let Some(class) = names.iter().position(|n| n == name) else {
            return Err(DataError::Config(format!(
                "`{}`: the class `{name}` is not among the training data's classes ({})",
                folder.display(),
                names.join(", ")
            )));
        };
        let mut found: Vec<PathBuf> = Vec::new();
        for entry in std::fs::read_dir(folder).map_err(io(folder))? {
            let path = entry.map_err(io(folder))?.path();
            if is_image(&path) {
                found.push(path);
            }
        }
        if found.is_empty() && known.is_none() {
            return Err(DataError::Config(format!(
                "the class folder `{}` holds no PNG, JPEG or BMP file",
                folder.display()
            )));
        }
        found.sort();
        labels.extend(std::iter::repeat_n(class as i64, found.len()));
        files.extend(found);
    }
    Ok((files, labels, Some(names)))
}

/// Image files, the class index of each, and the class names when the labels are names.
type Listed = (Vec<PathBuf>, Vec<i64>, Option<Vec<String>>);

/// A CSV with a header row, a `path` column (relative to the CSV's folder) and a label
/// column: class indices (`0`, `1`, ...) or names, indexed as `known` or sorted.
fn listed_csv(path: &Path, label: &str, known: Option<&[String]>) -> Result<Listed, DataError> {
    let shown = path.display().to_string();
    let bytes = files::read_regular(path).map_err(|source| DataError::Io { path: shown.clone(), source })?;
    let format = |line: usize, message: String| DataError::Format { path: shown.clone(), line, message };
    let text =
        String::from_utf8(bytes).map_err(|_| format(1, "not UTF-8 text; expected a CSV table".into()))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) =
        lines.next().ok_or_else(|| format(1, "the file is empty; expected a header row".into()))?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let find = |name: &str| {
        columns.iter().position(|c| *c == name).ok_or_else(|| {
            format(1, format!("no column `{name}` (a list of images has `path` and `{label}`)"))
        })
    };
    let (path_col, label_col) = (find("path")?, find(label)?);
    let base = path.parent().unwrap_or(Path::new(""));
    let (mut files, mut names) = (Vec::new(), Vec::new());
    for (i, line) in lines {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != columns.len() {
            return Err(format(i + 1, format!("expected {} columns, found {}", columns.len(), cells.len())));
        }
        files.push(base.join(cells[path_col]));
        names.push((i + 1, cells[label_col].to_string()));
    }
    let indices: Option<Vec<i64>> =
        names.iter().map(|(_, n)| n.parse::<i64>().ok().filter(|i| *i >= 0)).collect();
    if let (Some(indices), None) = (&indices, known) {
        return Ok((files, indices.clone(), None));
    }
    let (labels, classes) = csv::indices_of(&names, known).map_err(|(line, m)| format(line, m))?;
    Ok((files, labels, Some(classes)))
}

fn is_image(path: &Path) -> bool {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg" | "bmp"))
}

/// Every image decoded into one `[N, C, H, W]` buffer.
struct Pixels {
    values: Vec<f32>,
    shape: (usize, usize, usize),
}

/// Decodes `files` on as many threads as the machine has cores (the order of the result is the
/// order of `files`); the first failure by file order is the error.
fn decode_all(files: &[PathBuf], options: &ImageOptions) -> Result<Pixels, DataError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len()).max(1);
    let chunk = files.len().div_ceil(threads);
    type Decoded = Result<Vec<(Vec<f32>, Dims)>, DataError>;
    let decoded: Vec<Decoded> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|f| decode(f, options)).collect::<Decoded>()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(DataError::Config("an image decoder panicked".into()))))
            .collect()
    });
    let mut shape: Option<Dims> = None;
    let mut values = Vec::new();
    let images = decoded.into_iter().map(|part| part.map(Vec::into_iter));
    let mut index = 0;
    for part in images {
        for (image, own) in part? {
            let file = &files[index];
            index += 1;
            match shape {
                None => {
                    let total = image.len().saturating_mul(files.len());
                    values.try_reserve_exact(total).map_err(|_| {
                        DataError::Config(format!(
                            "{} images of {own:?} need more memory than there is",
                            files.len()
                        ))
                    })?;
                    shape = Some(own);
                }
                Some(first) if first != own => {
                    return Err(DataError::Config(format!(
                        "`{}` is {own:?} (channels, height, width) but `{}` is {first:?}: set \
                         `data.size: [h, w]` to resize every image to one size",
                        file.display(),
                        files[0].display()
                    )));
                }
                Some(_) => {}
            }
            values.extend(image);
        }
    }
    Ok(Pixels { values, shape: shape.unwrap_or((options.channels, 0, 0)) })
}

/// An image's channels, height and width.
type Dims = (usize, usize, usize);

/// One image file as `C × H × W` normalised values, and those dims.
fn decode(file: &Path, options: &ImageOptions) -> Result<(Vec<f32>, Dims), DataError> {
    let shown = file.display().to_string();
    let bytes = files::read_regular(file).map_err(|source| DataError::Io { path: shown.clone(), source })?;
    let bad = |message: String| DataError::Array { what: format!("`{shown}`"), message };
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| bad(format!("cannot decode it: {e}")))?;
    let (w, h) = image.dimensions();
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(bad(format!("{w} × {h} pixels, more than the {MAX_PIXELS} an image may hold")));
    }
    let image = transformed(image, options).map_err(bad)?;
    let (w, h) = image.dimensions();
    Ok((normalised(&image, options), (options.channels, h as usize, w as usize)))
}

/// Resized, then center-cropped; refused if resizing would make it larger than an image may be.
fn transformed(image: DynamicImage, options: &ImageOptions) -> Result<DynamicImage, String> {
    let (w, h) = image.dimensions();
    let target = match options.size {
        None => None,
        Some(Size::Exact(th, tw)) => Some((tw as f64, th as f64)),
        Some(Size::ShorterSide(n)) => {
            let (n, short) = (n as f64, f64::from(w.min(h)).max(1.0));
            Some(((f64::from(w) * n / short).round().max(1.0), (f64::from(h) * n / short).round().max(1.0)))
        }
    };
    let image = match target {
        None => image,
        Some((tw, th)) if tw * th > MAX_PIXELS as f64 => {
            return Err(format!(
                "resized from {w} × {h} it would be {tw} × {th}, more than an image may hold"
            ))
        }
        Some((tw, th)) => image.resize_exact(tw as u32, th as u32, FilterType::Triangle),
    };
    match options.center_crop {
        None => Ok(image),
        Some((ch, cw)) => {
            let (w, h) = image.dimensions();
            let (cw, ch) = (cw as u32, ch as u32);
            // A crop larger than the image is padded with black, as torchvision's.
            let mut out = DynamicImage::new(cw, ch, image.color());
            let (dx, dy) = (i64::from(cw) - i64::from(w), i64::from(ch) - i64::from(h));
            image::imageops::overlay(&mut out, &image, dx.div_euclid(2), dy.div_euclid(2));
            Ok(out)
        }
    }
}

/// The image's pixels as `C × H × W` f32 in [0, 1], normalised per channel.
fn normalised(image: &DynamicImage, options: &ImageOptions) -> Vec<f32> {
    let (w, h) = image.dimensions();
    let plane = (w * h) as usize;
    let interleaved: Vec<f32> = match options.channels {
        1 => image.to_luma32f().into_raw(),
        _ => image.to_rgb32f().into_raw(),
    };
    let c = options.channels;
    let mut out = vec![0f32; interleaved.len()];
    for (i, px) in interleaved.chunks_exact(c).enumerate() {
        for (k, v) in px.iter().enumerate() {
            let mean = options.mean.get(k).or(options.mean.first()).copied().unwrap_or(0.0);
            let std = options.std.get(k).or(options.std.first()).copied().unwrap_or(1.0);
            out[k * plane + i] = ((f64::from(*v) - mean) / std) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::data::test_dir;

    /// A `w × h` grayscale PNG whose pixels are `value`.
    fn png(path: &Path, w: u32, h: u32, value: u8) {
        image::GrayImage::from_pixel(w, h, image::Luma([value])).save(path).unwrap();
    }

    #[test]
    fn a_folder_of_class_folders_reads_as_sorted_classes_normalised_per_channel() {
        let dir = test_dir("images-folder");
        for (class, value) in [("cat", 255u8), ("ant", 0)] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
            png(&dir.join(class).join("b.png"), 3, 2, value);
            png(&dir.join(class).join("a.png"), 3, 2, value);
        }
        std::fs::write(dir.join("cat").join("notes.txt"), "not an image").unwrap();
        let options = ImageOptions { channels: 1, mean: vec![0.5], std: vec![0.5], ..Default::default() };
        let (raw, classes) = read(&dir, None, &options, None).unwrap();
        assert_eq!(classes.unwrap(), ["ant", "cat"]);
        assert_eq!(raw.x.tensor.dims(), &[4, 1, 2, 3]);
        assert_eq!(raw.y.unwrap().tensor.to_vec1::<i64>().unwrap(), [0, 0, 1, 1]);
        let first: Vec<f32> = raw.x.tensor.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!((first[0], first[23]), (-1.0, 1.0));
        // RGB: three equal channels; a second (validation) folder takes the training classes.
        let rgb = ImageOptions { size: Some(Size::Exact(4, 4)), ..Default::default() };
        let (raw, _) = read(&dir, None, &rgb, Some(&["ant".into(), "cat".into(), "dog".into()])).unwrap();
        assert_eq!(raw.x.tensor.dims(), &[4, 3, 4, 4]);
        let e = read(&dir, None, &rgb, Some(&["cat".into()])).unwrap_err().to_string();
        assert!(e.contains("the class `ant` is not among the training data's classes (cat)"), "{e}");
    }

    #[test]
    fn a_csv_lists_paths_and_labels_and_a_bad_file_is_named() {
        let dir = test_dir("images-csv");
        png(&dir.join("one.png"), 4, 4, 10);
        png(&dir.join("two.png"), 4, 4, 20);
        std::fs::write(dir.join("list.csv"), "path,kind\none.png,B\ntwo.png,A\n").unwrap();
        let options = ImageOptions { channels: 1, ..Default::default() };
        let (raw, classes) = read(&dir.join("list.csv"), Some("kind"), &options, None).unwrap();
        assert_eq!(classes.unwrap(), ["A", "B"]);
        assert_eq!(raw.y.unwrap().tensor.to_vec1::<i64>().unwrap(), [1, 0]);
        // Numeric labels are class indices, with no names recorded.
        std::fs::write(dir.join("n.csv"), "path,label\none.png,3\ntwo.png,0\n").unwrap();
        let (raw, classes) = read(&dir.join("n.csv"), None, &options, None).unwrap();
        assert_eq!((raw.y.unwrap().tensor.to_vec1::<i64>().unwrap(), classes), (vec![3, 0], None));
        // A file that is not an image, and one that is missing, are errors that name them.
        std::fs::write(dir.join("bad.png"), "not a png").unwrap();
        std::fs::write(dir.join("b.csv"), "path,label\none.png,0\nbad.png,1\n").unwrap();
        let e = read(&dir.join("b.csv"), None, &options, None).unwrap_err().to_string();
        assert!(e.contains("bad.png`") && e.contains("cannot decode it"), "{e}");
        std::fs::write(dir.join("m.csv"), "path,label\nmissing.png,0\n").unwrap();
        let e = read(&dir.join("m.csv"), None, &options, None).unwrap_err().to_string();
        assert!(e.contains("missing.png"), "{e}");
        // Images of two sizes need `size`; the message names both files.
        png(&dir.join("big.png"), 5, 4, 0);
        std::fs::write(dir.join("s.csv"), "path,label\none.png,0\nbig.png,1\n").unwrap();
        let e = read(&dir.join("s.csv"), None, &options, None).unwrap_err().to_string();
        assert!(e.contains("big.png` is (1, 4, 5)") && e.contains("one.png` is (1, 4, 4)"), "{e}");
        let resized = ImageOptions { size: Some(Size::Exact(2, 3)), center_crop: Some((2, 2)), ..options };
        let (raw, _) = read(&dir.join("s.csv"), None, &resized, None).unwrap();
        assert_eq!(raw.x.tensor.dims(), &[2, 1, 2, 2]);
    }

    #[test]
    fn a_header_that_claims_a_huge_image_is_refused_before_its_pixels_are_read() {
        let dir = test_dir("images-huge");
        // A PNG's IHDR declaring 100,000 × 100,000 pixels, and no image data.
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(100_000u32.to_be_bytes());
        ihdr.extend(100_000u32.to_be_bytes());
        ihdr.extend([8, 0, 0, 0, 0]);
        let crc = crc32fast::hash(&ihdr);
        let mut file = b"\x89PNG\r\n\x1a\n".to_vec();
        file.extend(13u32.to_be_bytes());
        file.extend(&ihdr);
        file.extend(crc.to_be_bytes());
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a").join("huge.png"), file).unwrap();
        let e = read(&dir, None, &ImageOptions::default(), None).unwrap_err().to_string();
        assert!(e.contains("huge.png`") && e.contains("cannot decode it"), "{e}");
    }
}
