//! RFC 8785 (JSON Canonicalization Scheme) serialization, fast path.
//!
//! Every record we hash, seal and timestamp is serialized canonically. The generic JCS
//! serializer buffers each property of each object separately to sort them, which made it
//! the largest cost of sealing a batch. Here a value is first turned into a
//! [`serde_json::Value`], whose objects are already sorted by key (a `BTreeMap`: UTF-8 byte
//! order, i.e. code point order), then written once into one buffer:
//!
//! - object members in the order of their keys' UTF-16 code units (RFC 8785 §3.2.3); it
//!   differs from code point order only between a key character in U+E000–U+FFFF and one
//!   above U+FFFF, so an object is re-sorted only when one of its keys has a character from
//!   U+E000 up;
//! - strings escaped as RFC 8785 §3.2.2.2 asks: `"` and `\`, the short forms `\b \t \n \f
//!   \r`, other characters below U+0020 as `\u00xx` with lowercase hex, nothing else (the
//!   same escaping `serde_json` writes);
//! - numbers: integers of magnitude up to 2^53, written in decimal — exactly what the
//!   ECMAScript number formatting of §3.2.2.3 gives for them.
//!
//! Anything else (a fraction, an exponent, a larger integer) is handed to the reference
//! serializer (`serde_json_canonicalizer`) for the whole value, so the output is always the
//! canonical form; a unit test compares both on many generated values.

use serde::Serialize;
use serde_json::Value;

/// Largest integer magnitude written by the fast path (2^53: every integer up to it is an
/// exact IEEE 754 double, written in plain decimal by ECMAScript).
const MAX_SAFE: u64 = 1 << 53;

/// The RFC 8785 canonical bytes of `value`.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    value_to_vec(&value)
}

/// The RFC 8785 canonical bytes of a JSON value.
pub fn value_to_vec(value: &Value) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(1024);
    if write(value, &mut out) {
        Ok(out)
    } else {
        serde_json_canonicalizer::to_vec(value)
    }
}

/// Writes `value`; false when it holds a number the fast path does not write.
fn write(value: &Value, out: &mut Vec<u8>) -> bool {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if u > MAX_SAFE {
                    return false;
                }
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                if i.unsigned_abs() > MAX_SAFE {
                    return false;
                }
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return false;
            }
        }
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if !write(item, out) {
                    return false;
                }
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            if map.keys().any(|k| k.chars().any(|c| c >= '\u{E000}')) {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                for (i, (key, item)) in members.into_iter().enumerate() {
                    if !write_member(i, key, item, out) {
                        return false;
                    }
                }
            } else {
                for (i, (key, item)) in map.iter().enumerate() {
                    if !write_member(i, key, item, out) {
                        return false;
                    }
                }
            }
            out.push(b'}');
        }
    }
    true
}

fn write_member(i: usize, key: &str, item: &Value, out: &mut Vec<u8>) -> bool {
    if i > 0 {
        out.push(b',');
    }
    write_str(key, out);
    out.push(b':');
    write(item, out)
}

/// A JSON string with the RFC 8785 escapes.
fn write_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A small deterministic generator (xorshift), so the comparison is repeatable.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn string(&mut self) -> String {
            const POOL: &[char] = &[
                'a',
                'b',
                'Z',
                '0',
                ' ',
                '"',
                '\\',
                '/',
                '\n',
                '\r',
                '\t',
                '\u{8}',
                '\u{c}',
                '\u{0}',
                '\u{1f}',
                '\u{7f}',
                'é',
                'ß',
                '€',
                '\u{2028}',
                '\u{e000}',
                '\u{fb33}',
                '\u{ffff}',
                '\u{10000}',
                '\u{1f600}',
                '\u{10ffff}',
                'ș',
                '\u{a0}',
            ];
            let len = self.below(8);
            (0..len)
                .map(|_| POOL[self.below(POOL.len() as u64) as usize])
                .collect()
        }

        fn value(&mut self, depth: u32) -> Value {
            let pick = if depth == 0 {
                self.below(5)
            } else {
                self.below(7)
            };
            match pick {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 0),
                2 => {
                    let n = self.next();
                    match self.below(6) {
                        0 => json!(n),
                        1 => json!(-((n >> 11) as i64)),
                        2 => json!((n % 1000) as f64 / 8.0),
                        3 => json!(MAX_SAFE + (n % 3)),
                        4 => json!(-(MAX_SAFE as i64) - (n % 3) as i64),
                        _ => json!(n % 100_000),
                    }
                }
                3 | 4 => Value::String(self.string()),
                5 => Value::Array((0..self.below(5)).map(|_| self.value(depth - 1)).collect()),
                _ => {
                    let mut map = serde_json::Map::new();
                    for _ in 0..self.below(6) {
                        map.insert(self.string(), self.value(depth - 1));
                    }
                    Value::Object(map)
                }
            }
        }
    }

    #[test]
    fn equals_the_reference_serializer_on_generated_values() {
        let mut generator = Gen(0x9e37_79b9_7f4a_7c15);
        let mut fast = 0;
        for _ in 0..20_000 {
            let value = generator.value(4);
            let reference = serde_json_canonicalizer::to_vec(&value).expect("reference");
            let mut out = Vec::new();
            if write(&value, &mut out) {
                fast += 1;
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&reference),
                    "{value:?}"
                );
            }
            assert_eq!(value_to_vec(&value).expect("canonical"), reference);
        }
        // Most values take the fast path (the others hold a fraction or a large integer).
        assert!(fast > 10_000, "{fast}");
    }

    #[test]
    fn sorts_keys_by_utf16_code_units() {
        // U+FB33 sorts before U+1F600 in code points but after it in UTF-16 (D83D…).
        let value = json!({"\u{fb33}": 1, "\u{1f600}": 2, "a": 3, "": 4});
        let out = value_to_vec(&value).expect("canonical");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "{\"\":4,\"a\":3,\"\u{1f600}\":2,\"\u{fb33}\":1}"
        );
    }

    #[test]
    fn escapes_as_rfc_8785_asks() {
        let value = json!(["\u{0}\u{1f}\u{7f}\"\\/\u{8}\u{c}\n\r\té"]);
        let out = value_to_vec(&value).expect("canonical");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "[\"\\u0000\\u001f\u{7f}\\\"\\\\/\\b\\f\\n\\r\\té\"]"
        );
    }

    #[test]
    fn fractions_and_large_integers_are_written_by_the_reference() {
        let value = json!({"f": 1.5, "big": MAX_SAFE + 1, "e": 1e21});
        assert_eq!(
            value_to_vec(&value).expect("canonical"),
            serde_json_canonicalizer::to_vec(&value).expect("reference")
        );
    }
}
