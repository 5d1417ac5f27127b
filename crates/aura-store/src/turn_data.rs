//! A turn's structured data (`serde_json::Value`, stored as JSONB): its input rules, and
//! the serialization that makes it read back as the same value.
//!
//! **Exact round trip.** JSONB keeps a number as `numeric`, which keeps its digits and its
//! scale (`3.0` stays `3.0`) but not an exponent: `1e16` comes back as
//! `10000000000000000`, which serde_json then reads as an integer, not the float that was
//! written (`Value` tells the two apart). serde_json writes every float whose value is a
//! whole number of 17 digits or more with an exponent (`1e16`, `1.5e16`); [`JsonData`]
//! writes such floats in plain decimal with a fractional part (`10000000000000000.0`), so
//! they come back as floats with the same value (a decimal that is exactly the float's
//! value parses back to that float). Everything else is written as serde_json writes it;
//! keys are unique and their order does not matter to `Value`'s equality, as in JSONB.
//!
//! **Rules** (checked before any SQL, [`check`]): at most
//! [`MAX_DATA_BYTES`](crate::limits::MAX_DATA_BYTES) as written, nested at most
//! [`MAX_DATA_DEPTH`](crate::limits::MAX_DATA_DEPTH) arrays or objects deep (serde_json
//! refuses to read more than 128 levels back), no NUL character in a string or key
//! (JSONB refuses `\u0000`, as text columns refuse NUL), and no float that could not be
//! read back (whole numbers near `f64::MAX`: JSONB writes them out in full, and serde_json
//! refuses some of those digits as out of range).

use std::io::{self, Write};

use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Jsonb;
use serde::Serialize;
use serde_json::Value;
use serde_json::ser::{CompactFormatter, Formatter, Serializer};

use crate::error::StoreError;
use crate::limits::{MAX_DATA_BYTES, MAX_DATA_DEPTH};

/// The field every rule names.
const FIELD: &str = "data";

/// Checks the rules above; the error names field `data`.
pub(crate) fn check(value: &Value) -> Result<(), StoreError> {
    // An explicit stack rather than recursion: a value nested a million levels deep is
    // refused, not a stack overflow.
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        let children = match value {
            Value::String(s) => {
                no_nul(s)?;
                continue;
            }
            Value::Array(items) => {
                for item in items {
                    stack.push((item, depth + 1));
                }
                true
            }
            Value::Object(map) => {
                for (key, item) in map {
                    no_nul(key)?;
                    stack.push((item, depth + 1));
                }
                true
            }
            Value::Number(n) => {
                readable(n)?;
                continue;
            }
            Value::Null | Value::Bool(_) => false,
        };
        if children && depth + 1 > MAX_DATA_DEPTH {
            return Err(StoreError::invalid(
                FIELD,
                format!("is nested more than {MAX_DATA_DEPTH} arrays or objects deep"),
            ));
        }
    }
    let mut budget = Budget {
        left: MAX_DATA_BYTES,
    };
    if write(value, &mut budget).is_err() {
        return Err(StoreError::invalid(
            FIELD,
            format!("is more than the limit of {MAX_DATA_BYTES} bytes (1 MiB) as JSON"),
        ));
    }
    Ok(())
}

/// A number that reads back: JSONB writes a whole-number float in full (`1e308` as 309
/// digits), and serde_json refuses some such numbers near the largest float
/// ("number out of range", for `f64::MAX` among them), so those are refused here instead
/// of failing every later read of the turn.
fn readable(n: &serde_json::Number) -> Result<(), StoreError> {
    let Some(v) = n.as_f64().filter(|_| n.is_f64()) else {
        return Ok(());
    };
    if v.fract() != 0.0 || v.abs() < 1e16 {
        return Ok(());
    }
    let written = format!("{v:.1}");
    if serde_json::from_str::<Value>(&written)
        .ok()
        .and_then(|back| back.as_f64())
        == Some(v)
    {
        return Ok(());
    }
    Err(StoreError::invalid(
        FIELD,
        format!(
            "holds the number {v:e}, which cannot be read back from JSONB (stored in full, \
             serde_json reads it as out of range)"
        ),
    ))
}

fn no_nul(s: &str) -> Result<(), StoreError> {
    if s.contains('\0') {
        return Err(StoreError::invalid(
            FIELD,
            "must not contain a NUL character (\\u0000) in a string or key: JSONB cannot \
             hold it",
        ));
    }
    Ok(())
}

/// A writer that fails once more than `left` bytes were written (the size check stops
/// early, whatever the value's size).
struct Budget {
    left: usize,
}

impl Write for Budget {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.left = self
            .left
            .checked_sub(buf.len())
            .ok_or_else(|| io::Error::other("over the limit"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `value` as JSON with [`ExactFloats`].
fn write(value: &Value, writer: impl Write) -> serde_json::Result<()> {
    value.serialize(&mut Serializer::with_formatter(writer, ExactFloats))
}

/// serde_json's compact output, but whole-number floats in plain decimal with `.0` (see
/// the module docs).
struct ExactFloats;

impl Formatter for ExactFloats {
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        if value.is_finite() && value.fract() == 0.0 {
            // Rust prints a float's exact decimal value: `1e16` as `10000000000000000.0`.
            write!(writer, "{value:.1}")
        } else {
            CompactFormatter.write_f64(writer, value)
        }
    }
}

/// A turn's data as a JSONB bind parameter, written with [`ExactFloats`] (diesel's own
/// `ToSql` for `Value` writes floats as serde_json does).
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonData<'a>(pub(crate) &'a Value);

impl ToSql<Jsonb, Pg> for JsonData<'_> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        // JSONB's binary format: a version byte, then the JSON text.
        out.write_all(&[1])?;
        write(self.0, out)?;
        Ok(IsNull::No)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn text(value: &Value) -> String {
        let mut out = Vec::new();
        write(value, &mut out).expect("to a Vec");
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    #[test]
    fn whole_floats_are_written_without_an_exponent_and_read_back_as_floats() {
        for (value, written) in [
            (json!(1e16), "10000000000000000.0"),
            (json!(-1.5e17), "-150000000000000000.0"),
            (json!(3.0), "3.0"),
            (json!(0.1), "0.1"),
            (json!(1e-7), "1e-7"),
            (json!(12), "12"),
            (json!(u64::MAX), "18446744073709551615"),
        ] {
            assert_eq!(text(&value), written);
            let back: Value = serde_json::from_str(written).expect("valid JSON");
            assert_eq!(back, value, "{written}");
        }
        // What numeric gives back for a float written with an exponent: an integer, which
        // is why the exponent is avoided.
        let from_numeric: Value = serde_json::from_str("10000000000000000").expect("JSON");
        assert_ne!(from_numeric, json!(1e16));
    }

    #[test]
    fn each_rule_names_the_data_field() {
        let field = |v: &Value| match check(v) {
            Err(StoreError::InvalidInput { field, reason }) => (field, reason),
            other => panic!("{v}: {other:?}"),
        };
        assert_eq!(field(&json!({"a": ["x\u{0}y"]})).0, "data");
        assert_eq!(field(&json!({"k\u{0}": 1})).0, "data");
        let mut deep = json!(1);
        for _ in 0..MAX_DATA_DEPTH {
            deep = json!([deep]);
        }
        assert!(check(&deep).is_ok());
        let (_, reason) = field(&json!({ "x": deep }));
        assert!(reason.contains("nested"), "{reason}");
        let big = json!("x".repeat(MAX_DATA_BYTES - 2));
        assert!(check(&big).is_ok(), "exactly the limit with its quotes");
        let (_, reason) = field(&json!("x".repeat(MAX_DATA_BYTES - 1)));
        assert!(reason.contains("1 MiB"), "{reason}");
        let (_, reason) = field(&json!({"n": [f64::MAX]}));
        assert!(reason.contains("read back"), "{reason}");
        assert!(check(&json!([1e308, -1e300, 1e16, 0.5, u64::MAX, i64::MIN])).is_ok());
    }
}
