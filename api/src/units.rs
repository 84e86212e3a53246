//! Units that stack files write as text: durations (`1m30s`), byte sizes (`512m`),
//! file modes (`0440`). Each is a newtype that parses from and prints to the
//! compose spelling, so a normalized stack round-trips through its text form.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Serde name of [`Duration`]; deserializers that know it may validate eagerly.
pub const DURATION_NAME: &str = "orch::Duration";
/// Serde name of [`Bytes`].
pub const BYTES_NAME: &str = "orch::Bytes";
/// Serde name of [`FileMode`].
pub const FILE_MODE_NAME: &str = "orch::FileMode";

/// A time span with nanosecond precision, written like Go's `time.Duration`
/// (`1h2m3s`, `500ms`, `1.5s`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

impl Duration {
    /// The span in nanoseconds.
    pub fn as_nanos(self) -> u64 {
        self.0
    }
    /// The span as a std duration.
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }
}

/// Parse a Go-style duration: a sequence of decimal numbers with units
/// `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, e.g. `1m30s`, `1.5h`, `0`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(Duration(0));
    }
    if s.starts_with('-') {
        return Err(format!("duration {text:?} is negative"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("invalid duration {text:?}: expected a number"));
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| {
            format!(
                "invalid duration {text:?}: bad number {:?}",
                &rest[..num_len]
            )
        })?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit (use ns, us, ms, s, m or h, e.g. \"{number}s\")"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ns, us, ms, s, m or h)"
                ));
            }
        };
        total += number * scale;
    }
    if total > u64::MAX as f64 {
        return Err(format!("duration {text:?} is too large"));
    }
    Ok(Duration(total.round() as u64))
}

impl fmt::Display for Duration {
    /// Formats like Go's `time.Duration.String()`: `1h0m0s`, `1m30s`, `1.5s`, `500ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n == 0 {
            return f.write_str("0s");
        }
        if n < 1_000_000_000 {
            let (unit, div) = if n < 1_000 {
                ("ns", 1)
            } else if n < 1_000_000 {
                ("µs", 1_000)
            } else {
                ("ms", 1_000_000)
            };
            return write!(f, "{}{}", frac(n, div), unit);
        }
        let hours = n / 3_600_000_000_000;
        let minutes = (n / 60_000_000_000) % 60;
        let secs_nanos = n % 60_000_000_000;
        if hours > 0 {
            write!(f, "{hours}h{minutes}m")?;
        } else if minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        write!(f, "{}s", frac(secs_nanos, 1_000_000_000))
    }
}

/// `value / div` as a decimal without trailing zeros.
fn frac(value: u64, div: u64) -> String {
    let whole = value / div;
    let rem = value % div;
    if rem == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = d.deserialize_newtype_struct(DURATION_NAME, TextVisitor)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// A size in bytes, written as an integer or with a unit (`512m`, `1.5gb`, `2GiB`);
/// units are binary multiples, as in Docker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub u64);

/// Parse a byte size: digits with an optional fraction and a unit among
/// `b`, `k`, `m`, `g`, `t`, `p` (each optionally followed by `b` or `ib`).
pub fn parse_bytes(text: &str) -> Result<Bytes, String> {
    let s = text.trim();
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    if num_len == 0 {
        return Err(format!(
            "invalid size {text:?}: expected a number with an optional unit, e.g. 512m or 1.5gb"
        ));
    }
    let number: f64 = s[..num_len]
        .parse()
        .map_err(|_| format!("invalid size {text:?}: bad number"))?;
    let unit = s[num_len..].trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(&unit);
    let scale: f64 = match unit {
        "" | "b" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => {
            return Err(format!(
                "invalid size {text:?}: unknown unit (use b, k, m, g, t or p, e.g. 512m)"
            ));
        }
    };
    let value = number * scale;
    if value > u64::MAX as f64 {
        return Err(format!("size {text:?} is too large"));
    }
    Ok(Bytes(value as u64))
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = d.deserialize_newtype_struct(BYTES_NAME, TextVisitor)?;
        parse_bytes(&text).map_err(serde::de::Error::custom)
    }
}

/// Unix permission bits, written in octal when they start with `0` (`0440`), as YAML 1.1
/// and Docker read them, or as a plain decimal integer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileMode(pub u32);

/// Parse a file mode: `0440` and `0o440` are octal, `288` decimal.
pub fn parse_file_mode(text: &str) -> Result<FileMode, String> {
    let s = text.trim();
    let parsed = if let Some(oct) = s.strip_prefix("0o") {
        u32::from_str_radix(oct, 8)
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8)
    } else {
        s.parse::<u32>()
    };
    match parsed {
        Ok(v) if v <= 0o7777 => Ok(FileMode(v)),
        _ => Err(format!(
            "invalid file mode {text:?}: expected octal permission bits such as 0440"
        )),
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = d.deserialize_newtype_struct(FILE_MODE_NAME, TextVisitor)?;
        parse_file_mode(&text).map_err(serde::de::Error::custom)
    }
}

/// Accepts a string or a number and hands back its text.
struct TextVisitor;

impl<'de> serde::de::Visitor<'de> for TextVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a number")
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_like_go() {
        for (text, nanos, printed) in [
            ("1m30s", 90_000_000_000, "1m30s"),
            ("90s", 90_000_000_000, "1m30s"),
            ("1h", 3_600_000_000_000, "1h0m0s"),
            ("1.5s", 1_500_000_000, "1.5s"),
            ("500ms", 500_000_000, "500ms"),
            ("10us", 10_000, "10µs"),
            ("0", 0, "0s"),
            ("2h45m", 9_900_000_000_000, "2h45m0s"),
        ] {
            let d = parse_duration(text).expect(text);
            assert_eq!(d.0, nanos, "{text}");
            assert_eq!(d.to_string(), printed, "{text}");
            assert_eq!(parse_duration(printed).unwrap(), d);
        }
    }

    #[test]
    fn bad_durations_say_why() {
        assert!(parse_duration("10").unwrap_err().contains("missing unit"));
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn byte_sizes() {
        for (text, bytes) in [
            ("512m", 512 << 20),
            ("1.5gb", 3 << 29),
            ("1g", 1 << 30),
            ("2GiB", 2 << 30),
            ("100k", 102_400),
            ("1024", 1024),
            ("10b", 10),
        ] {
            assert_eq!(parse_bytes(text).unwrap().0, bytes, "{text}");
        }
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5x").is_err());
    }

    #[test]
    fn file_modes() {
        assert_eq!(parse_file_mode("0440").unwrap().0, 0o440);
        assert_eq!(parse_file_mode("0o755").unwrap().0, 0o755);
        assert_eq!(parse_file_mode("288").unwrap().0, 288);
        assert!(parse_file_mode("0999").is_err());
    }
}

#[cfg(feature = "openapi")]
mod schema {
    //! OpenAPI schemas of the units: what they accept on input, in the compose spelling.
    use super::{Bytes, Duration, FileMode};
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};

    fn text(description: &str, example: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some(description))
            .examples([example])
    }

    fn integer_or_text(description: &str, example: &str) -> RefOr<Schema> {
        let integer = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Integer))
            .minimum(Some(0));
        OneOfBuilder::new()
            .item(integer)
            .item(text(description, example))
            .description(Some(description))
            .into()
    }

    impl utoipa::PartialSchema for Duration {
        fn schema() -> RefOr<Schema> {
            text(
                "A duration like Go's time.Duration: `1h2m3s`, `500ms`, `1.5s`.",
                "30s",
            )
            .into()
        }
    }

    impl utoipa::ToSchema for Duration {}

    impl utoipa::PartialSchema for Bytes {
        fn schema() -> RefOr<Schema> {
            integer_or_text(
                "A size in bytes: an integer, or text with a binary unit (`512m`, `2GiB`).",
                "512m",
            )
        }
    }

    impl utoipa::ToSchema for Bytes {}

    impl utoipa::PartialSchema for FileMode {
        fn schema() -> RefOr<Schema> {
            integer_or_text("A file mode: an integer, or octal text (`0440`).", "0440")
        }
    }

    impl utoipa::ToSchema for FileMode {}
}
