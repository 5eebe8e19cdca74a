//! The audit trail as a hash chain.
//!
//! Each entry carries the SHA-256 of the entry before it and of its own
//! content, so an entry that is edited, removed or moved breaks the chain at
//! that point. [`Chain`] appends (the store calls it inside the transaction
//! that changes the request); [`Verifier`] walks a stored trail and names the
//! first entry that does not fit.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditEvent {
    /// It was proposed.
    Created,
    /// A reviewer signed off, and with that the request is approved (or a
    /// rule approved it automatically).
    Approved,
    /// A reviewer signed off one stage of an approval chain or one seat of
    /// a quorum; the request still waits for more.
    Endorsed,
    /// A reviewer refused.
    Rejected,
    /// Its time ran out.
    Expired,
    /// It was withdrawn.
    Cancelled,
    /// Someone without the right to decide it tried to (401 or 403): the
    /// request is unchanged, the attempt is on record.
    Denied,
    /// It was still pending at its policy's reminder point: reviewers are
    /// notified again, and the reminder may have added a group to the
    /// current stage's reviewers (escalation).
    Reminded,
}

impl AuditEvent {
    /// Every event kind.
    pub const ALL: [AuditEvent; 8] = [
        AuditEvent::Created,
        AuditEvent::Approved,
        AuditEvent::Endorsed,
        AuditEvent::Rejected,
        AuditEvent::Expired,
        AuditEvent::Cancelled,
        AuditEvent::Denied,
        AuditEvent::Reminded,
    ];

    /// The lowercase name used in storage and in /v1.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::Created => "created",
            AuditEvent::Approved => "approved",
            AuditEvent::Endorsed => "endorsed",
            AuditEvent::Rejected => "rejected",
            AuditEvent::Expired => "expired",
            AuditEvent::Cancelled => "cancelled",
            AuditEvent::Denied => "denied",
            AuditEvent::Reminded => "reminded",
        }
    }

    /// The name the guide's `approvals.log` uses (`APPROVAL`, `REJECTION`),
    /// extended in the same style, so log tooling written for it keeps working.
    pub fn log_name(self) -> &'static str {
        match self {
            AuditEvent::Created => "REQUEST",
            AuditEvent::Approved => "APPROVAL",
            AuditEvent::Endorsed => "STAGE_APPROVAL",
            AuditEvent::Rejected => "REJECTION",
            AuditEvent::Expired => "EXPIRATION",
            AuditEvent::Cancelled => "CANCELLATION",
            AuditEvent::Denied => "DENIED",
            AuditEvent::Reminded => "REMINDER",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// What a transition asks to be written to the trail; the chain gives it a
/// place and a hash.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// What happened.
    pub event: AuditEvent,
    /// When.
    pub at: DateTime<Utc>,
    /// To which request.
    pub request_id: Uuid,
    /// The request's title, so a trail reads without joins.
    pub title: String,
    /// Who did it (`None` for expiry).
    pub actor: Option<String>,
    /// The rejection or cancellation reason.
    pub reason: Option<String>,
    /// The reviewer's comment.
    pub comment: Option<String>,
    /// The proposed action, on creation and on approval: what was signed off.
    pub action: Option<CanonicalJson>,
    /// On an approval with edits: the action as proposed, before the edit.
    pub original_action: Option<CanonicalJson>,
    /// On an approval or rejection: the stage of the approval plan it was
    /// given at.
    pub stage: Option<String>,
}

/// A SHA-256 digest, shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The `prev_hash` of the first entry.
    pub const GENESIS: Digest = Digest([0; 32]);

    /// The SHA-256 of `data`.
    pub fn sha256(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// The digest as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.hex(&mut [0; 64]).to_owned()
    }

    /// The digest as 64 lowercase hex digits, written into `out`: every
    /// write stores two digests, without allocating for them.
    pub fn hex<'a>(&self, out: &'a mut [u8; 64]) -> &'a str {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for (pair, byte) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        // Only ASCII hex digits were written.
        std::str::from_utf8(out).unwrap_or_default()
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Digest::from_hex(&text).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

/// One link of the trail as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Position in the trail, from 1 with no gaps.
    pub seq: i64,
    /// What was recorded.
    pub record: AuditRecord,
    /// The `hash` of the entry at `seq - 1` ([`Digest::GENESIS`] for the first).
    pub prev_hash: Digest,
    /// SHA-256 over this entry's content and `prev_hash`.
    pub hash: Digest,
}

/// Formats a timestamp the way the trail stores and hashes it.
pub fn format_time(at: DateTime<Utc>) -> String {
    match crate::rfc3339::micros(at) {
        Some(text) => text.as_str().to_owned(),
        None => at.to_rfc3339_opts(SecondsFormat::Micros, true),
    }
}

/// The SHA-256 of an action's canonical JSON: what an approval is bound to.
pub fn action_hash(action: &Map<String, Value>) -> Digest {
    CanonicalJson::of_object(action).digest()
}

/// A JSON value as the trail stores and hashes it: its canonical text
/// ([`canonical_json`]). Written once per action and shared by the entry's
/// hash, its stored column and every copy, instead of being serialised for
/// each.
#[derive(Clone, PartialEq, Eq)]
pub struct CanonicalJson(Arc<str>);

impl CanonicalJson {
    /// The canonical form of `value`.
    pub fn new(value: &Value) -> Self {
        Self(canonical_json(value).into())
    }

    /// The canonical form of an object.
    pub fn of_object(map: &Map<String, Value>) -> Self {
        let mut out = Vec::with_capacity(256);
        write_object(map, &mut out);
        Self(utf8(out).into())
    }

    /// Text already in canonical form (an [`crate::Action`] built from a
    /// map), taken as it is.
    pub(crate) fn of_canonical_text(text: &str) -> Self {
        Self(text.into())
    }

    /// Stored JSON text, brought to canonical form (so an entry written
    /// with other white space or key order still hashes the same).
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<Value>(text).map(|value| Self::new(&value))
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value again.
    pub fn to_value(&self) -> Value {
        // The text was written from a value: it always parses.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The SHA-256 of the canonical text.
    pub fn digest(&self) -> Digest {
        Digest::sha256(self.0.as_bytes())
    }
}

impl fmt::Debug for CanonicalJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Writes `value` as JSON with object keys sorted and no white space, so the
/// same value always has the same bytes (and the same hash), whatever order
/// its keys arrived in.
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    utf8(out)
}

fn utf8(bytes: Vec<u8>) -> String {
    // Only serde_json's output and ASCII punctuation were written.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => write_json(scalar, out),
    }
}

fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(key, out);
        out.push(b':');
        write_canonical(item, out);
    }
    out.push(b'}');
}

/// Appends `value` as compact JSON.
fn write_json<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Writing strings, numbers and options into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

impl AuditEntry {
    /// Recomputes the hash from the content, for comparison with `hash`.
    pub fn content_hash(&self) -> Digest {
        content_hash(self.seq, &self.record, &self.prev_hash)
    }
}

fn content_hash(seq: i64, record: &AuditRecord, prev: &Digest) -> Digest {
    Digest(Sha256::digest(content_bytes(seq, record, prev)).into())
}

/// The hashed bytes of an entry: the canonical JSON of an object holding its
/// fields (keys sorted, the action canonical too), written out directly
/// rather than built as a `Value` first, since every write computes it.
fn content_bytes(seq: i64, record: &AuditRecord, prev: &Digest) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"action\":");
    match &record.action {
        Some(action) => out.extend_from_slice(action.as_str().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"actor\":");
    write_json(&record.actor, &mut out);
    out.extend_from_slice(b",\"at\":");
    match crate::rfc3339::micros(record.at) {
        Some(at) => write_json(at.as_str(), &mut out),
        None => write_json(&format_time(record.at), &mut out),
    }
    out.extend_from_slice(b",\"comment\":");
    write_json(&record.comment, &mut out);
    out.extend_from_slice(b",\"event\":");
    write_json(record.event.as_str(), &mut out);
    // Present only on an edited approval, so entries without an edit hash
    // exactly as they did before edits existed.
    if let Some(original) = &record.original_action {
        out.extend_from_slice(b",\"original_action\":");
        out.extend_from_slice(original.as_str().as_bytes());
    }
    out.extend_from_slice(b",\"prev_hash\":\"");
    out.extend_from_slice(prev.hex(&mut [0; 64]).as_bytes());
    out.push(b'"');
    out.extend_from_slice(b",\"reason\":");
    write_json(&record.reason, &mut out);
    out.extend_from_slice(b",\"request_id\":\"");
    let mut id = uuid::Uuid::encode_buffer();
    out.extend_from_slice(
        record
            .request_id
            .hyphenated()
            .encode_lower(&mut id)
            .as_bytes(),
    );
    out.extend_from_slice(b"\",\"seq\":");
    write_json(&seq, &mut out);
    // Like original_action: present only when set, so older entries keep
    // their hashes.
    if let Some(stage) = &record.stage {
        out.extend_from_slice(b",\"stage\":");
        write_json(stage, &mut out);
    }
    out.extend_from_slice(b",\"title\":");
    write_json(&record.title, &mut out);
    out.push(b'}');
    out
}

/// The head of the trail: where the next entry goes and what it links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    last_seq: i64,
    head: Digest,
}

impl Chain {
    /// An empty trail.
    pub fn genesis() -> Self {
        Self {
            last_seq: 0,
            head: Digest::GENESIS,
        }
    }

    /// A trail whose last entry is `last_seq` with hash `head`.
    pub fn resume(last_seq: i64, head: Digest) -> Self {
        Self { last_seq, head }
    }

    /// The last entry's position (0 when empty).
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// The last entry's hash.
    pub fn head(&self) -> Digest {
        self.head
    }

    /// Links `record` after the head and moves the head to it.
    pub fn append(&mut self, record: AuditRecord) -> AuditEntry {
        let seq = self.last_seq + 1;
        let hash = content_hash(seq, &record, &self.head);
        let entry = AuditEntry {
            seq,
            record,
            prev_hash: self.head,
            hash,
        };
        self.last_seq = seq;
        self.head = hash;
        entry
    }
}

/// What is wrong at the first entry that does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainFault {
    /// Its content no longer matches its hash.
    Edited,
    /// Entries before it are missing: the trail jumps from `after` to it.
    Removed {
        /// The last intact entry before the gap (0 when the start is gone).
        after: i64,
    },
    /// Its content is intact but it does not link to the entry before it:
    /// entries were moved or replaced.
    Reordered,
    /// The trail ends before the recorded head: entries at the end were removed.
    Truncated {
        /// The last entry the head says exists.
        expected_last: i64,
    },
    /// The recorded head hash does not match the last entry.
    HeadMismatch,
}

/// The first entry that does not fit, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit entry {seq}: {}", describe(fault, *seq))]
pub struct ChainBreak {
    /// The entry (for [`ChainFault::Truncated`], the last entry found).
    pub seq: i64,
    /// What is wrong with it.
    pub fault: ChainFault,
}

fn describe(fault: &ChainFault, seq: i64) -> String {
    match fault {
        ChainFault::Edited => "content was edited (hash does not match)".into(),
        ChainFault::Removed { after } => {
            format!("entries {} to {} were removed", after + 1, seq - 1)
        }
        ChainFault::Reordered => "does not link to the entry before it (moved or replaced)".into(),
        ChainFault::Truncated { expected_last } => {
            format!("entries after it were removed (the trail should end at {expected_last})")
        }
        ChainFault::HeadMismatch => "the recorded head hash does not match this entry".into(),
    }
}

/// Walks a trail in `seq` order, one entry at a time, so a trail of any
/// length verifies in constant memory.
#[derive(Debug, Clone)]
pub struct Verifier {
    expected: Chain,
    checked: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Verifier {
    /// Starts at the beginning of the trail.
    pub fn new() -> Self {
        Self {
            expected: Chain::genesis(),
            checked: 0,
        }
    }

    /// How many entries were checked.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Checks the next entry.
    pub fn check(&mut self, entry: &AuditEntry) -> Result<(), ChainBreak> {
        let fault = if entry.content_hash() != entry.hash {
            Some(ChainFault::Edited)
        } else if entry.seq > self.expected.last_seq + 1 {
            Some(ChainFault::Removed {
                after: self.expected.last_seq,
            })
        } else if entry.seq != self.expected.last_seq + 1 || entry.prev_hash != self.expected.head {
            Some(ChainFault::Reordered)
        } else {
            None
        };
        if let Some(fault) = fault {
            return Err(ChainBreak {
                seq: entry.seq,
                fault,
            });
        }
        self.expected = Chain::resume(entry.seq, entry.hash);
        self.checked += 1;
        Ok(())
    }

    /// Ends the walk against the head recorded beside the trail, which
    /// catches entries removed from the end.
    pub fn finish(&self, recorded_head: Chain) -> Result<(), ChainBreak> {
        let last = self.expected.last_seq;
        if recorded_head.last_seq > last {
            return Err(ChainBreak {
                seq: last,
                fault: ChainFault::Truncated {
                    expected_last: recorded_head.last_seq,
                },
            });
        }
        if recorded_head.last_seq == last && recorded_head.head != self.expected.head {
            return Err(ChainBreak {
                seq: last,
                fault: ChainFault::HeadMismatch,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(n: i64) -> AuditRecord {
        AuditRecord {
            event: AuditEvent::Created,
            at: DateTime::from_timestamp(1_800_000_000 + n, 0).unwrap(),
            request_id: Uuid::from_u128(n as u128),
            title: format!("request {n}"),
            actor: Some("agent".into()),
            reason: None,
            comment: None,
            action: Some(CanonicalJson::new(&serde_json::json!({"b": 1, "a": [n]}))),
            original_action: None,
            stage: None,
        }
    }

    fn trail(len: i64) -> (Vec<AuditEntry>, Chain) {
        let mut chain = Chain::genesis();
        let entries = (1..=len).map(|n| chain.append(record(n))).collect();
        (entries, chain)
    }

    fn verify(entries: &[AuditEntry], head: Chain) -> Result<(), ChainBreak> {
        let mut v = Verifier::new();
        for e in entries {
            v.check(e)?;
        }
        v.finish(head)
    }

    #[test]
    fn content_bytes_are_the_canonical_json_of_the_fields() {
        let record = AuditRecord {
            at: Utc::now(),
            event: AuditEvent::Approved,
            request_id: uuid::Uuid::now_v7(),
            title: "Raise \"the\" limit \u{e9}".into(),
            actor: Some("alice".into()),
            reason: None,
            comment: Some("ok\n".into()),
            action: Some(CanonicalJson::new(
                &serde_json::json!({"b": [1, {"y": 2.5, "x": null}], "a": "z"}),
            )),
            original_action: Some(CanonicalJson::new(&serde_json::json!({"b": [0], "a": "y"}))),
            stage: Some("finance".into()),
        };
        let prev = Digest::sha256(b"before");
        let expected = canonical_json(&serde_json::json!({
            "seq": 42,
            "at": format_time(record.at),
            "event": record.event.as_str(),
            "request_id": record.request_id.to_string(),
            "title": record.title,
            "actor": record.actor,
            "reason": record.reason,
            "comment": record.comment,
            "action": record.action.as_ref().map(CanonicalJson::to_value),
            "original_action": record.original_action.as_ref().map(CanonicalJson::to_value),
            "stage": record.stage,
            "prev_hash": prev.to_hex(),
        }));
        assert_eq!(
            String::from_utf8(content_bytes(42, &record, &prev)).unwrap(),
            expected
        );
        // Without an edit the key is absent, not null.
        let plain = AuditRecord {
            original_action: None,
            stage: None,
            ..record
        };
        let bytes = String::from_utf8(content_bytes(42, &plain, &prev)).unwrap();
        assert!(!bytes.contains("original_action"), "{bytes}");
        assert!(!bytes.contains("stage"), "{bytes}");
    }

    #[test]
    fn hex_is_lowercase_and_round_trips() {
        let digest = Digest::sha256(b"signoff");
        assert_eq!(digest.to_hex(), hex::encode(digest.0));
        assert_eq!(Digest::from_hex(&digest.to_hex()), Some(digest));
    }

    #[test]
    fn action_hash_ignores_key_order() {
        let a = serde_json::json!({"x": 1, "y": {"b": 2, "a": 3}});
        let b: Value = serde_json::from_str(r#"{"y": {"a": 3, "b": 2}, "x": 1}"#).unwrap();
        let (Value::Object(a), Value::Object(b)) = (a, b) else {
            unreachable!()
        };
        assert_eq!(action_hash(&a), action_hash(&b));
        assert_eq!(
            action_hash(&a),
            Digest::sha256(canonical_json(&Value::Object(a.clone())).as_bytes())
        );
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[1,{"d":0,"c":0}]}}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":[1,{"c":0,"d":0}],"y":2},"b":1}"#
        );
    }

    #[test]
    fn intact_trail_verifies() {
        let (entries, head) = trail(5);
        assert_eq!(verify(&entries, head), Ok(()));
    }

    proptest! {
        #[test]
        fn any_edit_is_found_at_its_entry(len in 2i64..20, at in 0usize..20, title in "[a-z]{1,8}") {
            let (mut entries, head) = trail(len);
            let at = at % entries.len();
            prop_assume!(entries[at].record.title != title);
            entries[at].record.title = title;
            let err = verify(&entries, head).unwrap_err();
            prop_assert_eq!(err.seq, entries[at].seq);
            prop_assert_eq!(err.fault, ChainFault::Edited);
        }

        #[test]
        fn any_removal_is_found(len in 2i64..20, at in 0usize..20) {
            let (mut entries, head) = trail(len);
            let at = at % entries.len();
            let removed = entries.remove(at).seq;
            let err = verify(&entries, head).unwrap_err();
            if removed == len {
                prop_assert_eq!(err.fault, ChainFault::Truncated { expected_last: len });
            } else {
                prop_assert_eq!(err.seq, removed + 1);
                prop_assert_eq!(err.fault, ChainFault::Removed { after: removed - 1 });
            }
        }

        #[test]
        fn any_swap_is_found(len in 2i64..20, at in 0usize..19) {
            let (mut entries, head) = trail(len);
            let at = at % (entries.len() - 1);
            // Swap the contents but keep the positions, as an UPDATE would.
            let (a, b) = (entries[at].clone(), entries[at + 1].clone());
            entries[at] = AuditEntry { seq: a.seq, ..b.clone() };
            entries[at + 1] = AuditEntry { seq: b.seq, ..a };
            let err = verify(&entries, head).unwrap_err();
            prop_assert_eq!(err.seq, entries[at].seq);
        }
    }
}
