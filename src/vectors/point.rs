//! What goes in and out of a vector store: point ids, points, payload filters, search hits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A point's id, in the two forms Qdrant accepts: an unsigned integer or a UUID. A UUID is
/// written hyphenated in lower case, as Qdrant returns it, so both backends hand back the
/// same text whichever form went in (a 32-hex `file_uuid` is a UUID in simple form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PointId {
    Num(u64),
    Uuid(u128),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a point id is an unsigned integer or a UUID")]
pub struct BadPointId;

impl FromStr for PointId {
    type Err = BadPointId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse().map(PointId::Num).map_err(|_| BadPointId);
        }
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        let hyphens_in_place = text.len() == 32
            || (text.len() == 36 && [8, 13, 18, 23].iter().all(|&i| text.as_bytes()[i] == b'-'));
        if hex.len() != 32 || !hyphens_in_place || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BadPointId);
        }
        u128::from_str_radix(&hex, 16)
            .map(PointId::Uuid)
            .map_err(|_| BadPointId)
    }
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Uuid(u) => {
                let hex = format!("{u:032x}");
                let parts = [
                    &hex[..8],
                    &hex[8..12],
                    &hex[12..16],
                    &hex[16..20],
                    &hex[20..],
                ];
                f.write_str(&parts.join("-"))
            }
        }
    }
}

impl Serialize for PointId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            PointId::Num(n) => serializer.serialize_u64(*n),
            PointId::Uuid(_) => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for PointId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Number(n) => n
                .as_u64()
                .map(PointId::Num)
                .ok_or_else(|| serde::de::Error::custom(BadPointId)),
            Value::String(s) => s.parse().map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom(BadPointId)),
        }
    }
}

/// A vector with its id and a JSON object of facts about it (`file_uuid`, times, labels).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub id: PointId,
    pub vector: Vec<f32>,
    pub payload: Value,
}

/// Points whose payload has `key` equal to `value` (a string, integer or boolean), as
/// Qdrant's `match: {value}` condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub key: String,
    pub value: Value,
}

impl Filter {
    pub fn new(key: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A nearest-neighbour query.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub vector: Vec<f32>,
    pub limit: usize,
    pub filter: Option<Filter>,
    /// Only hits at least this similar (cosine similarity, -1 to 1).
    pub score_threshold: Option<f32>,
}

impl Search {
    pub fn new(vector: Vec<f32>, limit: usize) -> Self {
        Self {
            vector,
            limit,
            filter: None,
            score_threshold: None,
        }
    }

    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    pub fn score_threshold(mut self, threshold: f32) -> Self {
        self.score_threshold = Some(threshold);
        self
    }
}

/// One search hit, most similar first: `score` is the cosine similarity to the query.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hit {
    pub id: PointId,
    pub score: f32,
    #[serde(default)]
    pub payload: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_in_simple_or_hyphenated_form_read_as_the_same_id() {
        let simple: PointId = "0123456789abcdef0123456789ABCDEF".parse().unwrap();
        let hyphenated: PointId = "01234567-89ab-cdef-0123-456789abcdef".parse().unwrap();

        assert_eq!(simple, hyphenated);
        assert_eq!(simple.to_string(), "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!("42".parse::<PointId>(), Ok(PointId::Num(42)));
    }

    #[test]
    fn ids_that_are_neither_integer_nor_uuid_are_refused() {
        for text in [
            "",
            "-1",
            "abc",
            "0123456789abcdef0123456789abcdeg",
            "0-123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(text.parse::<PointId>(), Err(BadPointId), "{text}");
        }
    }

    #[test]
    fn ids_travel_as_json_numbers_or_strings() {
        let ids = [PointId::Num(7), PointId::Uuid(0xff)];

        let json = serde_json::to_value(ids).unwrap();

        assert_eq!(
            json,
            serde_json::json!([7, "00000000-0000-0000-0000-0000000000ff"])
        );
        assert_eq!(serde_json::from_value::<Vec<PointId>>(json).unwrap(), ids);
    }
}
