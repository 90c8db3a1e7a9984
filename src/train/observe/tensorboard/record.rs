//! TensorBoard's event file format, written by hand: a sequence of TFRecords, each holding one
//! `Event` protocol buffer (`tensorflow/core/util/event.proto`, `summary.proto`).
//!
//! A record is the data's length (u64, little-endian), the masked CRC-32C of those 8 bytes,
//! the data, and the masked CRC-32C of the data (`tensorflow/core/lib/io/record_writer.cc`).
//! Only the few protobuf fields TensorBoard reads for scalars and images are written:
//!
//! ```text
//! Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
//!           Summary summary = 5; SessionLog session_log = 7; }
//! Summary { repeated Value value = 1; }
//! Value   { string tag = 1; float simple_value = 2; Image image = 4; }
//! Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
//! SessionLog { SessionStatus status = 1; }   // START = 1
//! ```

const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// The CRC TFRecords store: CRC-32C rotated right by 15 bits plus a constant, so a CRC of
/// data that itself holds CRCs is not trivially related to them.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = CASTAGNOLI.checksum(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// `data` framed as one TFRecord.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// A summary value: a scalar, or an encoded (PNG) image.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(f32),
    Image { height: u32, width: u32, channels: u32, png: Vec<u8> },
}

/// What an event carries besides its time and step.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// The first event of every file: `brain.Event:2`.
    FileVersion,
    Summary(Vec<(String, Value)>),
    /// A run restarted at this step: TensorBoard drops what earlier files logged at it and
    /// past it.
    SessionStart,
}

const WIRE_VARINT: u64 = 0;
const WIRE_FIXED64: u64 = 1;
const WIRE_BYTES: u64 = 2;
const WIRE_FIXED32: u64 = 5;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, (field << 3) | wire);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    key(out, field, WIRE_BYTES);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One `Event` message.
pub fn event(wall_time: f64, step: i64, payload: &Payload) -> Vec<u8> {
    let mut out = Vec::new();
    key(&mut out, 1, WIRE_FIXED64);
    out.extend_from_slice(&wall_time.to_le_bytes());
    key(&mut out, 2, WIRE_VARINT);
    varint(&mut out, step as u64);
    match payload {
        Payload::FileVersion => bytes_field(&mut out, 3, b"brain.Event:2"),
        Payload::Summary(values) => {
            let mut summary = Vec::new();
            for (tag, value) in values {
                bytes_field(&mut summary, 1, &summary_value(tag, value));
            }
            bytes_field(&mut out, 5, &summary);
        }
        Payload::SessionStart => {
            let mut log = Vec::new();
            key(&mut log, 1, WIRE_VARINT);
            varint(&mut log, 1);
            bytes_field(&mut out, 7, &log);
        }
    }
    out
}

fn summary_value(tag: &str, value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    bytes_field(&mut out, 1, tag.as_bytes());
    match value {
        Value::Scalar(v) => {
            key(&mut out, 2, WIRE_FIXED32);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Image { height, width, channels, png } => {
            let mut image = Vec::new();
            for (field, v) in [(1, height), (2, width), (3, channels)] {
                key(&mut image, field, WIRE_VARINT);
                varint(&mut image, u64::from(*v));
            }
            bytes_field(&mut image, 4, png);
            bytes_field(&mut out, 4, &image);
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod read {
    //! A reader for what [`super`] writes, checking every checksum: the tests' own parser.

    use super::*;

    /// One event read back.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Event {
        pub wall_time: f64,
        pub step: i64,
        pub file_version: Option<String>,
        pub values: Vec<(String, Value)>,
        pub session_start: bool,
    }

    /// Every record's data, each checksum checked.
    pub fn records(mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let take = |b: &mut &[u8], n: usize| -> Result<Vec<u8>, String> {
                let (head, rest) = b.split_at_checked(n).ok_or("a truncated record")?;
                *b = rest;
                Ok(head.to_vec())
            };
            let len = take(&mut bytes, 8)?;
            let len_crc = u32::from_le_bytes(take(&mut bytes, 4)?.try_into().map_err(|_| "crc")?);
            if len_crc != masked_crc(&len) {
                return Err("the length's checksum does not match".into());
            }
            let n = u64::from_le_bytes(len.try_into().map_err(|_| "len")?) as usize;
            let data = take(&mut bytes, n)?;
            let data_crc = u32::from_le_bytes(take(&mut bytes, 4)?.try_into().map_err(|_| "crc")?);
            if data_crc != masked_crc(&data) {
                return Err("the data's checksum does not match".into());
            }
            out.push(data);
        }
        Ok(out)
    }

    fn read_varint(b: &mut &[u8]) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first().ok_or("a truncated varint")?;
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err("a varint of more than 10 bytes".into())
    }

    /// The fields of a message: (number, varint or fixed value, or the bytes).
    fn fields(mut b: &[u8]) -> Result<Vec<(u64, u64, Vec<u8>)>, String> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let k = read_varint(&mut b)?;
            let (field, wire) = (k >> 3, k & 7);
            let fixed = |b: &mut &[u8], n: usize| -> Result<u64, String> {
                let (head, rest) = b.split_at_checked(n).ok_or("a truncated field")?;
                *b = rest;
                Ok(head.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
            };
            match wire {
                WIRE_VARINT => out.push((field, read_varint(&mut b)?, Vec::new())),
                WIRE_FIXED64 => out.push((field, fixed(&mut b, 8)?, Vec::new())),
                WIRE_FIXED32 => out.push((field, fixed(&mut b, 4)?, Vec::new())),
                WIRE_BYTES => {
                    let n = read_varint(&mut b)? as usize;
                    let (head, rest) = b.split_at_checked(n).ok_or("a truncated field")?;
                    b = rest;
                    out.push((field, 0, head.to_vec()));
                }
                w => return Err(format!("wire type {w}")),
            }
        }
        Ok(out)
    }

    pub fn event(data: &[u8]) -> Result<Event, String> {
        let mut e = Event::default();
        for (field, v, bytes) in fields(data)? {
            match field {
                1 => e.wall_time = f64::from_bits(v),
                2 => e.step = v as i64,
                3 => e.file_version = Some(String::from_utf8_lossy(&bytes).into()),
                5 => {
                    for (_, _, value) in fields(&bytes)? {
                        e.values.push(summary_value(&value)?);
                    }
                }
                7 => e.session_start = fields(&bytes)?.iter().any(|f| f.0 == 1 && f.1 == 1),
                _ => {}
            }
        }
        Ok(e)
    }

    fn summary_value(data: &[u8]) -> Result<(String, Value), String> {
        let (mut tag, mut value) = (String::new(), None);
        for (field, v, bytes) in fields(data)? {
            match field {
                1 => tag = String::from_utf8_lossy(&bytes).into(),
                2 => value = Some(Value::Scalar(f32::from_bits(v as u32))),
                4 => {
                    let image = fields(&bytes)?;
                    let get = |n: u64| image.iter().find(|f| f.0 == n);
                    value = Some(Value::Image {
                        height: get(1).map_or(0, |f| f.1 as u32),
                        width: get(2).map_or(0, |f| f.1 as u32),
                        channels: get(3).map_or(0, |f| f.1 as u32),
                        png: get(4).map(|f| f.2.clone()).unwrap_or_default(),
                    });
                }
                _ => {}
            }
        }
        Ok((tag, value.ok_or("a value without a scalar or image")?))
    }

    /// Every event of a file's bytes.
    pub fn events(bytes: &[u8]) -> Result<Vec<Event>, String> {
        records(bytes)?.iter().map(|r| event(r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masked_crc_is_tensorflows() {
        // CRC-32C's check value ("123456789" -> 0xe3069283), then TensorFlow's mask of it.
        assert_eq!(CASTAGNOLI.checksum(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xe306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8));
        // A file's first event at time 0, step 0: field 1 (fixed64) zero, field 2 (varint)
        // zero (written, though proto3 writers leave zeros out; readers take both), field 3
        // the version string; framed by its length and both checksums.
        let data = event(0.0, 0, &Payload::FileVersion);
        assert_eq!(data[..11], [0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x00]);
        assert_eq!(&data[11..], b"\x1a\x0dbrain.Event:2");
        let framed = record(&data);
        assert_eq!(framed.len(), 8 + 4 + data.len() + 4);
        assert_eq!(read::records(&framed).unwrap(), [data]);
    }

    #[test]
    fn events_read_back_with_their_values_and_a_flipped_bit_is_caught() {
        let values = vec![
            ("train/loss".to_string(), Value::Scalar(0.25)),
            ("samples".to_string(), Value::Image { height: 2, width: 3, channels: 1, png: vec![1, 2, 3] }),
        ];
        let mut file = record(&event(1.5, 300, &Payload::Summary(values.clone())));
        file.extend(record(&event(2.0, 7, &Payload::SessionStart)));
        let events = read::events(&file).unwrap();
        assert_eq!((events[0].wall_time, events[0].step, &events[0].values), (1.5, 300, &values));
        assert!(events[1].session_start && events[1].step == 7);
        for bit in [0, 8 * 9, 8 * 14, 8 * (file.len() - 1)] {
            let mut bad = file.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(read::events(&bad).is_err(), "bit {bit}");
        }
    }
}
