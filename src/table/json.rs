//! JSON handled as text, so that what is stored is what was written: numbers keep their
//! exact text (`1.10`, `1E+400`), strings their escapes, objects their member order and
//! repeated names. serde_json checks the text and finds the members (as `RawValue`s, slices
//! of the text itself); the only hand-written part is [`minify`], because no parser keeps
//! the text while dropping the white space between tokens.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, Deserialize, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{Error, Result};

/// `text` without the white space outside its strings; every other byte as it is. Only
/// meaningful for valid JSON: check the text first (see [`compact_json`]).
pub(crate) fn minify(text: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while let Some(&byte) = text.get(i) {
        // A string is copied whole: most of a row's text is in strings, and jumping from
        // quote to backslash through it is several times faster than a byte at a time.
        let next = if byte == b'"' {
            string_end(text, i)
        } else {
            i + 1
        };
        if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            // Copy only once there is something to leave out.
            out.get_or_insert_with(|| text[..i].to_vec());
        } else if let Some(out) = &mut out {
            out.extend_from_slice(&text[i..next]);
        }
        i = next;
    }
    match out {
        Some(out) => Cow::Owned(out),
        None => Cow::Borrowed(text),
    }
}

/// Where the string opening at `open` ends: just past its closing quote, or the end of
/// `text` if it has none.
fn string_end(text: &[u8], open: usize) -> usize {
    let mut at = open + 1;
    while let Some(rest) = text.get(at..) {
        match memchr::memchr2(b'"', b'\\', rest) {
            None => break,
            Some(found) if rest[found] == b'"' => return at + found + 1,
            // A backslash and the byte it escapes.
            Some(found) => at += found + 2,
        }
    }
    text.len()
}

/// Checks that `text` is one JSON value and returns it without the white space outside its
/// strings, everything else exactly as written: member order, number text (`4.50`, `1e3`,
/// `12345678901234567890`), string escapes. This is how `put` and the table readers store
/// JSON. Invalid JSON is an [`Error::Malformed`] with serde_json's reason.
pub fn compact_json(text: &[u8]) -> Result<Cow<'_, [u8]>> {
    serde_json::from_slice::<IgnoredAny>(text).map_err(|e| Error::malformed("JSON", e))?;
    Ok(minify(text))
}

/// True when `value` is JSON exactly as [`compact_json`] would store it.
pub(crate) fn is_compact(value: &[u8]) -> bool {
    matches!(compact_json(value), Ok(Cow::Borrowed(_)))
}

/// True when `text`, already checked to be JSON, has no white space outside its strings:
/// then it is exactly as [`compact_json`] would store it. (A successful [`members`] is
/// such a check, so a caller that needs both parses once.)
pub(crate) fn is_minified(text: &[u8]) -> bool {
    matches!(minify(text), Cow::Borrowed(_))
}

/// What kind of JSON value `raw` (trimmed JSON text) is, for messages.
pub(crate) fn kind(raw: &[u8]) -> &'static str {
    match raw.first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// The content of a JSON string's text (quotes included).
pub(crate) fn string(raw: &str) -> Result<Cow<'_, str>> {
    let inner = raw
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'));
    match inner {
        // Nothing to unescape: the text between the quotes is the content.
        Some(inner) if !inner.contains('\\') => Ok(Cow::Borrowed(inner)),
        _ => serde_json::from_str::<String>(raw)
            .map(Cow::Owned)
            .map_err(|e| Error::malformed("JSON string", e)),
    }
}

/// One member of a JSON object.
pub(crate) struct Member<'a> {
    /// The name, unescaped.
    pub name: Cow<'a, str>,
    /// The value's text, a slice of the object's text (with any white space inside it).
    pub value: &'a str,
    /// Where the value's text starts in the object's text.
    pub at: usize,
}

impl Member<'_> {
    /// Where the value's text ends in the object's text.
    pub fn end(&self) -> usize {
        self.at + self.value.len()
    }
}

/// The members of the JSON object `text`, in order, repeated names included. `Ok(None)`
/// when `text` is valid JSON but not an object; an error (serde_json's, with its line and
/// column in `text`) when it is not valid JSON.
pub(crate) fn members(text: &[u8]) -> Result<Option<Vec<Member<'_>>>, serde_json::Error> {
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        serde_json::from_slice::<IgnoredAny>(text)?;
        return Ok(None);
    }
    let raw: Vec<(Name<'_>, &RawValue)> = serde_json::from_slice::<Members<'_>>(text)?.0;
    let base = text.as_ptr() as usize;
    let mut members = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        let value = value.get();
        // serde_json borrows every `RawValue` from `text`, so its address gives its place.
        let at = (value.as_ptr() as usize).wrapping_sub(base);
        if text.get(at..at + value.len()) != Some(value.as_bytes()) {
            return Err(de::Error::custom(
                "a member's text is not part of the object",
            ));
        }
        members.push(Member {
            name: name.0,
            value,
            at,
        });
    }
    Ok(Some(members))
}

/// What [`pick`] keeps of a JSON object: its number of members, and the value text of the
/// last member with each name asked for (as JSON readers do, the last of repeated names
/// counts).
pub(crate) struct Picked<'a, S> {
    /// How many members the object has, repeated names included.
    pub count: usize,
    names: &'a [S],
    values: Vec<Option<&'a str>>,
}

impl<'a, S: AsRef<str>> Picked<'a, S> {
    /// The value text of the last member named `name`, if `name` was asked for and the
    /// object has it.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        let at = self.names.iter().position(|n| n.as_ref() == name)?;
        self.values[at]
    }

    /// Whether the object has a member with any of the names asked for.
    pub fn any(&self) -> bool {
        self.values.iter().any(Option::is_some)
    }
}

/// The same check as [`members`] (`Ok(None)` for valid JSON that is not an object, an error
/// for invalid JSON), keeping only the members named in `names`: one parse and one small
/// allocation, where collecting every member costs two vectors. Tables use it for each
/// row they read or write, where the members themselves are not needed.
pub(crate) fn pick<'a, S: AsRef<str>>(
    text: &'a [u8],
    names: &'a [S],
) -> Result<Option<Picked<'a, S>>, serde_json::Error> {
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        serde_json::from_slice::<IgnoredAny>(text)?;
        return Ok(None);
    }
    let mut parser = serde_json::Deserializer::from_slice(text);
    let picked = parser.deserialize_map(PickVisitor(names))?;
    parser.end()?;
    Ok(Some(picked))
}

/// Visits an object's members for [`pick`].
struct PickVisitor<'a, S>(&'a [S]);

impl<'de, S: AsRef<str>> Visitor<'de> for PickVisitor<'de, S> {
    type Value = Picked<'de, S>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Picked<'de, S>, A::Error> {
        let mut picked = Picked {
            count: 0,
            names: self.0,
            values: vec![None; self.0.len()],
        };
        while let Some(name) = map.next_key::<Name<'de>>()? {
            picked.count += 1;
            match self.0.iter().position(|n| n.as_ref() == name.0) {
                Some(at) => picked.values[at] = Some(map.next_value::<&'de RawValue>()?.get()),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(picked)
    }
}

/// A member name, borrowed from the text when it has no escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(name)))
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name.to_string())))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// An object's members in order, repeated names kept (a map type would merge them).
struct Members<'a>(Vec<(Name<'a>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<Name<'de>, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minify_keeps_everything_but_white_space() {
        let text = br#" { "a" : [ 1 , 2.50 ] ,	"b c" : "x \" y \\" , "n" : 1E+400 }
"#;
        assert_eq!(
            &*minify(text),
            br#"{"a":[1,2.50],"b c":"x \" y \\","n":1E+400}"#
        );
        assert!(matches!(minify(br#"{"a":1}"#), Cow::Borrowed(_)));
        assert!(is_compact(br#"{"a":1}"#));
        assert!(!is_compact(b"[1, 2]"));
        assert!(!is_compact(b"plain"));
        assert!(compact_json(b"{\"a\":1 2}").is_err());
    }

    /// White space outside strings, a byte at a time: what `minify` must do.
    fn minify_model(text: &[u8]) -> Vec<u8> {
        let (mut in_string, mut escaped) = (false, false);
        let mut out = Vec::new();
        for &byte in text {
            if in_string {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    in_string = false;
                }
            } else if byte == b'"' {
                in_string = true;
            } else if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                continue;
            }
            out.push(byte);
        }
        out
    }

    proptest::proptest! {
        /// Any bytes, valid JSON or not (strings left open, a backslash last): the same as
        /// the model, and borrowed exactly when nothing is left out.
        #[test]
        fn minify_is_the_byte_at_a_time_model(
            text in proptest::collection::vec(
                proptest::sample::select(b"\"\\ \t\n\rab{}:,1".to_vec()),
                0..64,
            )
        ) {
            let minified = minify(&text);
            let model = minify_model(&text);
            proptest::prop_assert_eq!(&*minified, model.as_slice());
            proptest::prop_assert_eq!(matches!(minified, Cow::Borrowed(_)), model == text);
        }
    }

    proptest::proptest! {
        /// Objects with repeated, escaped and nested members, white space, and now and then
        /// a stray comma or a non-object: `pick` agrees with `members` on validity, shape,
        /// count, and the last member of each name.
        #[test]
        fn pick_finds_what_members_find(
            parts in proptest::collection::vec(
                (
                    proptest::sample::select(vec![r#""a""#, r#""b""#, r#""_key""#, r#""\u0061""#, r#""a\"q""#]),
                    proptest::sample::select(vec!["1", r#""x""#, r#""a""#, r#"{"a":2}"#, r#"[1,{"b":3}]"#, "null", "-0.50"]),
                    proptest::sample::select(vec!["", " ", "\n"]),
                ),
                0..6,
            ),
            shape in 0..8u8,
        ) {
            let mut text = String::from("{");
            for (i, (name, value, space)) in parts.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&format!("{space}{name}{space}:{space}{value}{space}"));
            }
            text.push('}');
            match shape {
                0 => text.insert(text.len() - 1, ','),
                1 => text = format!("[{text}]"),
                2 => text.push_str(" 1"),
                _ => {}
            }
            let names = ["a", "_key", "a\"q", "z"];
            let picked = pick(text.as_bytes(), &names);
            let all = members(text.as_bytes());
            proptest::prop_assert_eq!(picked.is_ok(), all.is_ok(), "{}", text);
            if let (Ok(picked), Ok(all)) = (picked, all) {
                proptest::prop_assert_eq!(picked.is_some(), all.is_some());
                if let (Some(picked), Some(all)) = (picked, all) {
                    proptest::prop_assert_eq!(picked.count, all.len());
                    for name in names {
                        let last = all.iter().rev().find(|m| m.name == name).map(|m| m.value);
                        proptest::prop_assert_eq!(picked.get(name), last);
                    }
                    proptest::prop_assert_eq!(picked.any(), all.iter().any(|m| names.contains(&m.name.as_ref())));
                }
            }
        }
    }

    #[test]
    fn members_split_at_the_top_level_only_and_know_their_place() {
        let text =
            br#"{"a":{"x":[1,{"y":"}"}]}, "b\"q" : "s,t","c":-1.10,"d":null,"e":[],"f":{},"a":2}"#;
        let members = members(text).unwrap().unwrap();
        let names: Vec<&str> = members.iter().map(|m| m.name.as_ref()).collect();
        assert_eq!(names, ["a", "b\"q", "c", "d", "e", "f", "a"]);
        let values: Vec<&str> = members.iter().map(|m| m.value).collect();
        assert_eq!(
            values,
            [
                r#"{"x":[1,{"y":"}"}]}"#,
                r#""s,t""#,
                "-1.10",
                "null",
                "[]",
                "{}",
                "2"
            ]
        );
        for member in &members {
            assert_eq!(&text[member.at..member.end()], member.value.as_bytes());
        }
        assert_eq!(super::members(b"{}").unwrap().unwrap().len(), 0);
        assert!(super::members(b"[1]").unwrap().is_none());
        assert!(super::members(b"{\"a\":1,}").is_err());
        assert!(super::members(b"[1,]").is_err());
        assert_eq!(string(r#""a\u00e9\n""#).unwrap(), "a\u{e9}\n");
        assert!(matches!(
            string(r#""plain""#).unwrap(),
            Cow::Borrowed("plain")
        ));
    }
}
