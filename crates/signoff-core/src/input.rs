//! Domain values parsed at the edge. Once a handler holds a [`Title`] or an
//! [`ExpiresIn`], nothing downstream validates it again.

use std::fmt;

use chrono::Duration;

/// Why a value from outside was refused, naming the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The field of the input, as the client spelled it.
    pub field: &'static str,
    /// What is wrong with it, in words a client can act on.
    pub message: String,
}

impl ValidationError {
    /// A refusal of `field` because of `message`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

fn non_blank(
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<String, ValidationError> {
    // Blank: Unicode white space plus the separators U+001C..U+001F (which
    // Python's `\s` counts as space). The OpenAPI pattern lists exactly
    // these characters (signoff-api tests that they agree).
    if value
        .chars()
        .all(|c| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
    {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    check_text(field, value)?;
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max_chars} characters (got {chars})"),
        ));
    }
    Ok(value.to_owned())
}

/// Refuses text no database can keep as text: the NUL character (JSON
/// may carry it as `\u0000`; PostgreSQL's `text` cannot hold it). Inside
/// an action it is fine: actions are stored as JSON, where it stays escaped.
pub fn check_text(field: &'static str, value: &str) -> Result<(), ValidationError> {
    if value.contains('\0') {
        return Err(ValidationError::new(
            field,
            "must not contain the NUL character (\\u0000)",
        ));
    }
    Ok(())
}

/// Checks a reviewer's comment: text, at most as long as a description.
pub fn check_comment(comment: &str) -> Result<(), ValidationError> {
    check_text("comment", comment)?;
    if comment.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ValidationError::new(
            "comment",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(())
}

/// A request's title: 1 to 200 characters, not all white space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Longest title accepted, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Parses the `title` field.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        non_blank("title", value, Self::MAX_CHARS).map(Self)
    }

    /// The title text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Title {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a request was rejected or cancelled: required on rejection so that the
/// drafter learns what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    /// Longest reason accepted, in characters.
    pub const MAX_CHARS: usize = 4000;

    /// Parses a reason given in `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValidationError> {
        non_blank(field, value, Self::MAX_CHARS).map(Self)
    }

    /// The reason text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owned text.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Who did something: a reviewer, a requester, or whoever cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    /// Longest name accepted, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Parses a name given in `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, ValidationError> {
        non_blank(field, value, Self::MAX_CHARS).map(Self)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owned name.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// How long a request stays open before it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiresIn(u64);

impl ExpiresIn {
    /// The default life of a request: 24 hours, as in the guide.
    pub const DEFAULT: Self = Self(24 * 3600);
    /// The longest life accepted (about 31 years): far past any review, small
    /// enough that no timestamp arithmetic can overflow, and exactly what the
    /// API's documented duration pattern can express.
    pub const MAX_SECONDS: u64 = 999_999_999;

    /// From a number of seconds; 0 means already expired.
    pub fn from_seconds(seconds: u64) -> Result<Self, ValidationError> {
        if seconds > Self::MAX_SECONDS {
            return Err(ValidationError::new(
                "expires_in",
                format!(
                    "must be at most {} seconds (about 31 years)",
                    Self::MAX_SECONDS
                ),
            ));
        }
        Ok(Self(seconds))
    }

    /// Parses a duration string: digits with an optional unit `s`, `m`, `h`
    /// or `d` ("90s", "30m", "24h", "7d"; bare digits are seconds).
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let value = value.trim();
        let (digits, unit) = match value.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => (&value[..i], c),
            _ => (value, 's'),
        };
        let multiplier: u64 = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            other => {
                return Err(ValidationError::new(
                    "expires_in",
                    format!("unknown unit '{other}': use s, m, h or d (e.g. \"30m\")"),
                ));
            }
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::new(
                "expires_in",
                format!(
                    "'{value}' is not a duration: use seconds or a number with s, m, h or d (e.g. \"90s\", \"24h\")"
                ),
            ));
        }
        let seconds = digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .ok_or_else(|| ValidationError::new("expires_in", "is too large"))?;
        Self::from_seconds(seconds)
    }

    /// The life as whole seconds.
    pub fn seconds(self) -> u64 {
        self.0
    }

    /// The life as a chrono duration.
    pub fn duration(self) -> Duration {
        // MAX_SECONDS fits in i64 by construction.
        Duration::seconds(self.0 as i64)
    }
}

/// The most labels a request may carry.
pub const MAX_LABELS: usize = 32;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 20_000;
/// The largest action (proposed or edited), as compact JSON.
pub const MAX_ACTION_BYTES: usize = 256 * 1024;

/// Checks the parts of a request that have size limits, naming the field;
/// `action` is the proposed action's JSON text.
pub fn check_limits(
    description: &str,
    labels: usize,
    action_field: &'static str,
    action: &str,
) -> Result<(), ValidationError> {
    check_text("description", description)?;
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ValidationError::new(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if labels > MAX_LABELS {
        return Err(ValidationError::new(
            "labels",
            format!("at most {MAX_LABELS} labels"),
        ));
    }
    check_action_size(action_field, action.len())
}

/// Checks an action's size.
pub fn check_action(
    field: &'static str,
    action: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ValidationError> {
    check_action_size(
        field,
        serde_json::to_vec(action).map_or(usize::MAX, |bytes| bytes.len()),
    )
}

/// Checks the size of an action's compact JSON, `size` bytes.
fn check_action_size(field: &'static str, size: usize) -> Result<(), ValidationError> {
    if size > MAX_ACTION_BYTES {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_ACTION_BYTES} bytes as JSON (it is {size})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_alone_are_blank() {
        assert!(Title::parse("\u{1c}\u{1f} ").is_err());
        assert!(Title::parse("\u{1c}x").is_ok());
    }

    #[test]
    fn text_with_a_nul_is_refused() {
        assert!(Title::parse("a\0b").is_err());
        assert!(Actor::parse("requester", "\0").is_err());
        assert!(check_comment("ok").is_ok());
        assert!(check_comment("x\0").is_err());
        assert!(check_limits("\0", 0, "proposed_action", "{}").is_err());
    }

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(ExpiresIn::parse("90s").map(ExpiresIn::seconds), Ok(90));
        assert_eq!(ExpiresIn::parse("30m").map(ExpiresIn::seconds), Ok(1800));
        assert_eq!(ExpiresIn::parse("24h").map(ExpiresIn::seconds), Ok(86400));
        assert_eq!(ExpiresIn::parse("2d").map(ExpiresIn::seconds), Ok(172800));
        assert_eq!(ExpiresIn::parse("0").map(ExpiresIn::seconds), Ok(0));
        assert_eq!(ExpiresIn::parse("15").map(ExpiresIn::seconds), Ok(15));
    }

    #[test]
    fn bad_durations_name_the_field() {
        for bad in [
            "",
            "h",
            "10x",
            "-5s",
            "1.5h",
            "99999999999999999999d",
            "20000d",
        ] {
            let err = ExpiresIn::parse(bad).expect_err(bad);
            assert_eq!(err.field, "expires_in", "{bad}");
        }
    }

    #[test]
    fn titles_are_bounded_and_not_blank() {
        assert!(Title::parse("Raise the limit").is_ok());
        assert!(Title::parse("   ").is_err());
        assert!(Title::parse(&"é".repeat(200)).is_ok());
        assert!(Title::parse(&"é".repeat(201)).is_err());
    }
}
