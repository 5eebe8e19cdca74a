//! HTML pieces the templates cannot make themselves: highlighted JSON, the
//! line diff between two attempts' actions, and "time left" in words.
//! Everything that comes from a request is escaped here.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `value` pretty-printed as HTML, each token in a `<span>` whose class
/// (`k` key, `s` string, `n` number, `b` boolean, `z` null) the stylesheet
/// colours.
pub fn json_html(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn string_literal(text: &str) -> String {
    // serde_json's own quoting, so what is shown is valid JSON.
    serde_json::to_string(text).unwrap_or_default()
}

fn write_value(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Null => out.push_str("<span class=\"z\">null</span>"),
        Value::Bool(b) => {
            let _ = write!(out, "<span class=\"b\">{b}</span>");
        }
        Value::Number(n) => {
            let _ = write!(out, "<span class=\"n\">{n}</span>");
        }
        Value::String(s) => {
            let _ = write!(
                out,
                "<span class=\"s\">{}</span>",
                escape(&string_literal(s))
            );
        }
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                indent(out, depth + 1);
                write_value(out, item, depth + 1);
                if i + 1 < items.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            indent(out, depth);
            out.push(']');
        }
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            out.push_str("{\n");
            for (i, (key, item)) in map.iter().enumerate() {
                indent(out, depth + 1);
                let _ = write!(
                    out,
                    "<span class=\"k\">{}</span>: ",
                    escape(&string_literal(key))
                );
                write_value(out, item, depth + 1);
                if i + 1 < map.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            indent(out, depth);
            out.push('}');
        }
    }
}

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    /// `+` added, `-` removed, ` ` unchanged.
    pub sign: char,
    /// The line.
    pub text: String,
}

/// The line diff from `before` to `after`, both pretty-printed.
pub fn json_diff(before: &Value, after: &Value) -> Vec<DiffLine> {
    let before = serde_json::to_string_pretty(before).unwrap_or_default();
    let after = serde_json::to_string_pretty(after).unwrap_or_default();
    similar::TextDiff::from_lines(&before, &after)
        .iter_all_changes()
        .map(|change| DiffLine {
            sign: match change.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            },
            text: change.value().trim_end_matches('\n').to_owned(),
        })
        .collect()
}

/// "in 3 h 20 min", "in 45 s", "5 min ago".
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (at - now).num_seconds();
    if seconds.abs() < 5 {
        return "just now".to_owned();
    }
    let words = span(seconds.unsigned_abs());
    if seconds >= 0 {
        format!("in {words}")
    } else {
        format!("{words} ago")
    }
}

fn span(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => {
            let minutes = (seconds % 3600) / 60;
            if minutes == 0 {
                format!("{} h", seconds / 3600)
            } else {
                format!("{} h {minutes} min", seconds / 3600)
            }
        }
        _ => format!("{} d {} h", seconds / 86_400, (seconds % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_escaped_and_classed() {
        let html = json_html(&json!({"<b>": "x<script>", "n": 1, "ok": true, "z": null}));
        assert!(html.contains(r#"<span class="k">&quot;&lt;b&gt;&quot;</span>: "#));
        assert!(html.contains(r#"<span class="s">&quot;x&lt;script&gt;&quot;</span>"#));
        assert!(html.contains(r#"<span class="n">1</span>"#));
        assert!(html.contains(r#"<span class="b">true</span>"#));
        assert!(html.contains(r#"<span class="z">null</span>"#));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn diff_marks_changed_lines() {
        let lines = json_diff(
            &json!({"limit": 5000, "team": "x"}),
            &json!({"limit": 2000, "team": "x"}),
        );
        let changed: Vec<_> = lines.iter().filter(|l| l.sign != ' ').collect();
        assert_eq!(changed.len(), 2);
        assert_eq!(changed[0].sign, '-');
        assert!(changed[0].text.contains("5000"));
        assert!(changed[1].text.contains("2000"));
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = DateTime::UNIX_EPOCH;
        assert_eq!(
            relative(now + chrono::Duration::seconds(45), now),
            "in 45 s"
        );
        assert_eq!(
            relative(now + chrono::Duration::minutes(200), now),
            "in 3 h 20 min"
        );
        assert_eq!(
            relative(now - chrono::Duration::minutes(5), now),
            "5 min ago"
        );
        assert_eq!(relative(now, now), "just now");
    }
}
