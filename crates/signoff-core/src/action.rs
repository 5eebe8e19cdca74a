//! The action a request proposes, kept as the JSON text it is stored as.
//!
//! Most reads of a request only pass its action on: a page of the inbox
//! writes fifty of them into a response. Parsing each into a map of values
//! and writing it out again was about a quarter of a page's cost, so the
//! action stays text until something needs to look inside it (a decision,
//! an executor, the web page's diff), which parses it then.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::audit::CanonicalJson;

/// A request's proposed action: a JSON object, held as its text.
///
/// Built from a map it holds the canonical text ([`CanonicalJson`]); read
/// back from a store it holds what the store wrote, checked to be a JSON
/// object. Hashes are always taken over the canonical form
/// ([`Action::canonical`]), whatever the text's white space or key order.
#[derive(Clone)]
pub struct Action {
    raw: Box<RawValue>,
    /// Whether `raw` is known to be canonical already (so that
    /// [`Action::canonical`] need not parse it).
    canonical: bool,
}

impl Action {
    /// The action `map` describes.
    pub fn of_map(map: &Map<String, Value>) -> Self {
        // serde_json writes a map with its keys sorted and no white space:
        // the canonical text (a test holds this), and unlike
        // `RawValue::from_string` it does not parse what it wrote again.
        match serde_json::value::to_raw_value(map) {
            Ok(raw) => Self {
                raw,
                canonical: true,
            },
            // Not reached: a map of JSON values always serialises. An empty
            // object rather than a panic if it ever did not.
            Err(_) => Self::default(),
        }
    }

    /// Stored text, checked to be a JSON object and kept as it is.
    pub fn from_text(text: String) -> Result<Self, serde_json::Error> {
        let raw = RawValue::from_string(text)?;
        if !raw.get().starts_with('{') {
            return Err(serde_json::Error::custom("an action must be a JSON object"));
        }
        Ok(Self {
            raw,
            canonical: false,
        })
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.raw.get()
    }

    /// The action as a map of values (parsed from the text).
    pub fn to_map(&self) -> Map<String, Value> {
        // The text was checked to be an object when this was made.
        serde_json::from_str(self.raw.get()).unwrap_or_default()
    }

    /// The canonical text: what approvals are bound to and the trail hashes.
    pub fn canonical(&self) -> CanonicalJson {
        if self.canonical {
            CanonicalJson::of_canonical_text(self.as_str())
        } else {
            CanonicalJson::of_object(&self.to_map())
        }
    }
}

impl Default for Action {
    /// The empty object.
    fn default() -> Self {
        // `{}` is JSON; `null` (read back as no keys) only if it were not.
        Self {
            raw: RawValue::from_string("{}".to_owned())
                .unwrap_or_else(|_| RawValue::NULL.to_owned()),
            canonical: true,
        }
    }
}

impl PartialEq for Action {
    /// The same object, whatever the white space or key order of the text.
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() || self.to_map() == other.to_map()
    }
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Written as the text it is, not parsed and written again.
        self.raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        Ok(Self::of_map(&map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn serialises_as_the_json_a_map_would() {
        for value in [
            json!({}),
            json!({"b": [1, {"y": 2.5, "x": null}], "a": "z\u{e9}\"\n\u{1}", "c": -0.0}),
            json!({"type": "refund", "amount": 12.5, "big": 18446744073709551615u64, "neg": -3}),
        ] {
            let action = Action::of_map(&map(value.clone()));
            assert_eq!(
                serde_json::to_string(&action).unwrap(),
                serde_json::to_string(&value).unwrap()
            );
            assert_eq!(Value::Object(action.to_map()), value);
            assert_eq!(serde_json::to_value(&action).unwrap(), value);
        }
    }

    #[test]
    fn built_from_a_map_it_is_the_canonical_text() {
        // Keys inserted out of order: serde_json built with `preserve_order`
        // (a feature any dependency could turn on) would keep that order,
        // and the text would no longer be what approvals are bound to.
        let mut map = Map::new();
        for key in ["zeta", "alpha", "Mid", "é", "a\"q"] {
            map.insert(key.into(), json!({"y": [2, {"b": 1, "a": null}], "x": 1.5}));
        }
        let action = Action::of_map(&map);
        assert_eq!(
            action.as_str(),
            crate::audit::canonical_json(&Value::Object(map.clone()))
        );
        assert_eq!(action.canonical(), CanonicalJson::of_object(&map));
    }

    #[test]
    fn stored_text_must_be_an_object() {
        assert!(Action::from_text("[1]".into()).is_err());
        assert!(Action::from_text("{\"a\":".into()).is_err());
        assert!(Action::from_text("\"x\"".into()).is_err());
        let action = Action::from_text("{\"b\": 1, \"a\": 2}".into()).unwrap();
        assert_eq!(action.as_str(), "{\"b\": 1, \"a\": 2}");
        assert_eq!(action.canonical().as_str(), "{\"a\":2,\"b\":1}");
        let built = Action::of_map(&map(json!({"b": 1, "a": 2})));
        assert_eq!(built.canonical().as_str(), "{\"a\":2,\"b\":1}");
        assert_eq!(action, Action::of_map(&map(json!({"a": 2, "b": 1}))));
    }

    #[test]
    fn deserialises_from_any_object_into_canonical_text() {
        let action: Action =
            serde_json::from_str("{ \"b\": 1, \"a\": {\"d\": 0, \"c\": 0} }").unwrap();
        assert_eq!(action.as_str(), "{\"a\":{\"c\":0,\"d\":0},\"b\":1}");
        assert!(serde_json::from_str::<Action>("[]").is_err());
    }
}
