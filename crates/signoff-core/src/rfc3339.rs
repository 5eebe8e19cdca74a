//! RFC 3339 timestamps written straight into a stack buffer.
//!
//! Every response carries a request's timestamps and every audit entry hashes
//! one, so they are formatted on the hot path. chrono formats through
//! `core::fmt`, a character at a time; these functions write the same bytes
//! with plain arithmetic, and fall back to chrono for what they do not cover
//! (years outside 0000..=9999, leap seconds), so their output is always
//! exactly chrono's.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};

/// The longest timestamp written here: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const LEN: usize = 30;

/// A formatted timestamp; dereferences to its text.
#[derive(Clone, Copy)]
pub struct Rfc3339 {
    bytes: [u8; LEN],
    len: usize,
}

impl Rfc3339 {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation are ever written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl std::ops::Deref for Rfc3339 {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// How many fractional digits to write.
#[derive(Clone, Copy)]
enum Fraction {
    /// Always six (`SecondsFormat::Micros`).
    Micros,
    /// As few of 0, 3, 6 or 9 as show the value exactly (`SecondsFormat::AutoSi`).
    Auto,
}

/// `at` as `to_rfc3339_opts(SecondsFormat::Micros, true)` writes it: what
/// the audit trail stores and hashes.
pub fn micros(at: DateTime<Utc>) -> Option<Rfc3339> {
    write(at, Fraction::Micros)
}

/// `at` as chrono's `Serialize` writes it (`SecondsFormat::AutoSi`, `Z`).
pub fn auto(at: DateTime<Utc>) -> Option<Rfc3339> {
    write(at, Fraction::Auto)
}

/// Serialises `at` exactly as chrono does, only faster: for
/// `#[serde(serialize_with = ...)]` on API fields.
pub fn serialize<S: serde::Serializer>(
    at: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match auto(*at) {
        Some(text) => serializer.serialize_str(&text),
        None => serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    }
}

/// [`serialize`] for an optional timestamp (`null` when absent).
pub fn serialize_option<S: serde::Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serialize(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// `None` where chrono writes something this does not (a year outside
/// 0000..=9999, a leap second): the caller uses chrono then.
fn write(at: DateTime<Utc>, fraction: Fraction) -> Option<Rfc3339> {
    let year = u32::try_from(at.year()).ok().filter(|year| *year <= 9999)?;
    let nanos = at.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut bytes = [0u8; LEN];
    digits(&mut bytes[0..4], year);
    bytes[4] = b'-';
    digits(&mut bytes[5..7], at.month());
    bytes[7] = b'-';
    digits(&mut bytes[8..10], at.day());
    bytes[10] = b'T';
    digits(&mut bytes[11..13], at.hour());
    bytes[13] = b':';
    digits(&mut bytes[14..16], at.minute());
    bytes[16] = b':';
    digits(&mut bytes[17..19], at.second());
    let (shown, places) = match fraction {
        Fraction::Micros => (nanos / 1_000, 6),
        Fraction::Auto if nanos == 0 => (0, 0),
        Fraction::Auto if nanos.is_multiple_of(1_000_000) => (nanos / 1_000_000, 3),
        Fraction::Auto if nanos.is_multiple_of(1_000) => (nanos / 1_000, 6),
        Fraction::Auto => (nanos, 9),
    };
    let mut len = 19;
    if places > 0 {
        bytes[len] = b'.';
        digits(&mut bytes[len + 1..len + 1 + places], shown);
        len += 1 + places;
    }
    bytes[len] = b'Z';
    Some(Rfc3339 {
        bytes,
        len: len + 1,
    })
}

/// Writes `value`'s last `out.len()` decimal digits, zero-padded.
fn digits(out: &mut [u8], mut value: u32) {
    for byte in out.iter_mut().rev() {
        // `value % 10` is below 10: the cast cannot truncate.
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn chrono_auto(at: DateTime<Utc>) -> String {
        serde_json::to_value(at)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn every_fraction_width() {
        let base = Utc.with_ymd_and_hms(2026, 12, 3, 2, 23, 55).unwrap();
        for nanos in [0, 97_000_000, 97_026_000, 97_026_001, 1, 999_999_999] {
            let at = base + chrono::Duration::nanoseconds(i64::from(nanos));
            assert_eq!(auto(at).unwrap().as_str(), chrono_auto(at));
            assert_eq!(
                micros(at).unwrap().as_str(),
                at.to_rfc3339_opts(SecondsFormat::Micros, true)
            );
        }
    }

    #[test]
    fn years_past_four_digits_are_left_to_chrono() {
        let far = Utc.with_ymd_and_hms(12026, 1, 1, 0, 0, 0).unwrap();
        assert!(auto(far).is_none());
        let json = serde_json::to_string(&Wrapper(far)).unwrap();
        assert_eq!(json, serde_json::to_string(&far).unwrap());
    }

    #[derive(serde::Serialize)]
    struct Wrapper(#[serde(serialize_with = "serialize")] DateTime<Utc>);

    proptest! {
        #[test]
        fn same_text_as_chrono(secs in 0i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
            let Some(at) = DateTime::from_timestamp(secs, nanos) else {
                return Ok(());
            };
            prop_assert_eq!(auto(at).unwrap().as_str().to_owned(), chrono_auto(at));
            prop_assert_eq!(
                micros(at).unwrap().as_str().to_owned(),
                at.to_rfc3339_opts(SecondsFormat::Micros, true)
            );
            prop_assert_eq!(
                serde_json::to_string(&Wrapper(at)).unwrap(),
                serde_json::to_string(&at).unwrap()
            );
        }
    }
}
