//! Bytes written as text: a row key, a dataset name or a value that is not JSON.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes as people and programs write them: as the text itself when they are UTF-8, else
/// in a marked hex form. This is the one spelling of keys (and dataset names) in tables and
/// in JSON, so a key reaches the same row however it was produced:
///
/// * JSON (serde): a string when the bytes are UTF-8 (`"s-17"`, `"0xff"`: text is never
///   decoded), else `{"hex": "ff00"}`. Deserializing accepts exactly these two forms.
/// * `Display`: the text when UTF-8, else `0x` and the hex (`0xff00`). Text that itself
///   starts with `0x` is shown as it is, so this form is for people; programs read JSON.
///
/// ```
/// use strata::TextOrHex;
///
/// assert_eq!(serde_json::to_string(&TextOrHex(b"s-17")).unwrap(), r#""s-17""#);
/// assert_eq!(serde_json::to_string(&TextOrHex(b"\xff\x00")).unwrap(), r#"{"hex":"ff00"}"#);
/// let key: TextOrHex = serde_json::from_str(r#"{"hex":"ff00"}"#).unwrap();
/// assert_eq!(key.0, b"\xff\x00");
/// assert_eq!(TextOrHex(b"\xff\x00").to_string(), "0xff00");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextOrHex<B = Vec<u8>>(pub B);

impl<B: AsRef<[u8]>> fmt::Display for TextOrHex<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(self.0.as_ref()) {
            Ok(text) => f.write_str(text),
            Err(_) => write!(f, "0x{}", hex::encode(self.0.as_ref())),
        }
    }
}

impl<B: AsRef<[u8]>> Serialize for TextOrHex<B> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0.as_ref()) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("hex", &hex::encode(self.0.as_ref()))?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for TextOrHex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = TextOrHex;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a string, or {"hex": "<hex digits>"} for bytes that are not text"#)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<TextOrHex, E> {
                Ok(TextOrHex(text.as_bytes().to_vec()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TextOrHex, A::Error> {
                let digits = match map.next_key::<String>()? {
                    Some(name) if name == "hex" => map.next_value::<String>()?,
                    _ => return Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
                };
                if map.next_key::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_type(de::Unexpected::Map, &self));
                }
                hex::decode(&digits).map(TextOrHex).map_err(|_| {
                    de::Error::custom(format!("{:?} is not hex", crate::error::excerpt(&digits)))
                })
            }
        }
        deserializer.deserialize_any(BytesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_forms_read_back_and_others_are_refused() {
        for bytes in [&b"k"[..], b"0xff", b"\xff\x00", b"line\n\"q\"", b""] {
            let json = serde_json::to_string(&TextOrHex(bytes)).unwrap();
            let back: TextOrHex = serde_json::from_str(&json).unwrap();
            assert_eq!(back.0, bytes, "{json}");
        }
        for bad in [
            r#"{"hex":"zz"}"#,
            r#"{"hex":"ff","x":1}"#,
            r#"{"text":"a"}"#,
            "12",
            "null",
        ] {
            assert!(serde_json::from_str::<TextOrHex>(bad).is_err(), "{bad}");
        }
    }
}
