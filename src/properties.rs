//! Property tests (issue 12 §6): the pure cores checked on random inputs against
//! definitions independent of the code under test.
//!
//! - Merkle log (RFC 9162 §2.1): inclusion and consistency proofs of random trees verify
//!   against the recursive MTH definition, and a proof with one altered hash, index or size
//!   does not;
//! - canonical JSON (RFC 8785): the fast writer equals the reference serializer, and its
//!   output is a fixed point of parse + re-serialize;
//! - DER (X.690): written structures read back the same under the strict reader, and
//!   non-minimal INTEGERs and lengths are refused;
//! - the 15-day window (CPCE R.53-3): for notification instants across 2015–2035 the last
//!   instant of the window is 23:59:59.999999 Europe/Paris on the notification's Paris day +
//!   15, with the Paris offset computed here from the EU summer-time rule (Directive
//!   2000/84/EC: from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday
//!   of October), not from the time zone database the code uses.

use proptest::prelude::*;

mod merkle {
    use std::collections::HashMap;

    use super::*;
    use crate::core::log::merkle::{
        Frontier, Hash, consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash,
        verify_consistency, verify_inclusion,
    };

    /// MTH of RFC 9162 §2.1.1, recursively over the leaves: the oracle.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                // The largest power of two smaller than n.
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    /// The leaves and the stored perfect subtrees of a tree of `size` leaves, built by
    /// appending as the log does.
    fn tree(size: u64, seed: u64) -> (Vec<Hash>, HashMap<(u32, u64), Hash>) {
        let mut frontier = Frontier::empty();
        let mut stored = HashMap::new();
        let mut leaves = Vec::new();
        for i in 0..size {
            let leaf = leaf_hash(&(seed ^ i).to_be_bytes());
            leaves.push(leaf);
            for (level, index, hash) in frontier.append(leaf) {
                stored.insert((level, index), hash);
            }
        }
        (leaves, stored)
    }

    fn lookup(
        stored: &HashMap<(u32, u64), Hash>,
    ) -> impl FnMut(u32, u64) -> Result<Hash, String> + '_ {
        |level, index| {
            stored
                .get(&(level, index))
                .copied()
                .ok_or_else(|| format!("node ({level},{index}) not stored"))
        }
    }

    proptest! {
        #[test]
        fn inclusion_proofs_verify_and_tampered_ones_do_not(
            size in 1u64..300, index_seed in any::<u64>(), seed in any::<u64>(),
            flip in any::<(usize, u8)>(),
        ) {
            let index = index_seed % size;
            let (leaves, stored) = tree(size, seed);
            let root = reference_root(&leaves);
            let proof = inclusion_proof(index, size, lookup(&stored)).expect("proof");
            prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &proof, &root));

            if !proof.is_empty() {
                let mut tampered = proof.clone();
                let at = flip.0 % tampered.len();
                tampered[at][usize::from(flip.1) % 32] ^= 1;
                prop_assert!(!verify_inclusion(&leaves[index as usize], index, size, &tampered, &root));
                prop_assert!(!verify_inclusion(&leaves[index as usize], index, size, &proof[1..], &root));
            }
            if size > 1 {
                let other = (index + 1) % size;
                prop_assert!(!verify_inclusion(&leaves[other as usize], index, size, &proof, &root));
            }
        }

        #[test]
        fn consistency_proofs_verify_and_tampered_ones_do_not(
            new in 1u64..300, old_seed in any::<u64>(), seed in any::<u64>(),
            flip in any::<(usize, u8)>(),
        ) {
            let old = 1 + old_seed % new;
            let (leaves, stored) = tree(new, seed);
            let old_root = reference_root(&leaves[..old as usize]);
            let new_root = reference_root(&leaves);
            let proof = consistency_proof(old, new, lookup(&stored)).expect("proof");
            prop_assert!(verify_consistency(old, new, &old_root, &new_root, &proof));

            if !proof.is_empty() {
                let mut tampered = proof.clone();
                let at = flip.0 % tampered.len();
                tampered[at][usize::from(flip.1) % 32] ^= 1;
                prop_assert!(!verify_consistency(old, new, &old_root, &new_root, &tampered));
            }
            // A rewritten history: the same sizes, another first leaf.
            let mut rewritten = leaves.clone();
            rewritten[0] = leaf_hash(b"rewritten");
            let forged_old = reference_root(&rewritten[..old as usize]);
            prop_assert!(!verify_consistency(old, new, &forged_old, &new_root, &proof));
        }
    }
}

mod canonical {
    use serde_json::Value;

    use super::*;
    use crate::core::canonical::value_to_vec;

    fn string() -> impl Strategy<Value = String> {
        // Escapes, controls, BMP above U+E000 and astral characters: where key order and
        // escaping rules differ (RFC 8785 §3.2.2.2, §3.2.3).
        prop::collection::vec(
            prop_oneof![
                Just('a'),
                Just('Z'),
                Just('"'),
                Just('\\'),
                Just('/'),
                Just('\n'),
                Just('\u{0}'),
                Just('\u{1f}'),
                Just('\u{7f}'),
                Just('é'),
                Just('\u{2028}'),
                Just('\u{e000}'),
                Just('\u{ffff}'),
                Just('\u{10000}'),
                Just('\u{1f600}'),
                any::<char>(),
            ],
            0..6,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
        ]
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            number(),
            string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(string(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_fast_writer_equals_the_reference_serializer(value in json()) {
            let fast = value_to_vec(&value).expect("fast");
            let reference = serde_json_canonicalizer::to_vec(&value).expect("reference");
            prop_assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&reference));
        }

        #[test]
        fn canonical_output_is_a_fixed_point_of_parse_and_reserialize(value in json()) {
            let once = value_to_vec(&value).expect("canonical");
            let parsed: Value = serde_json::from_slice(&once).expect("canonical output parses");
            let twice = value_to_vec(&parsed).expect("canonical");
            prop_assert_eq!(once, twice);
        }
    }
}

mod der {
    use super::*;
    use crate::core::asn1::{self, Der, Tlv, tag};

    /// A DER structure made of the types the evidence code writes.
    #[derive(Debug, Clone, PartialEq)]
    enum Node {
        Integer(u128),
        Octets(Vec<u8>),
        Text(String),
        Boolean(bool),
        Null,
        Sequence(Vec<Node>),
    }

    fn node() -> impl Strategy<Value = Node> {
        let leaf = prop_oneof![
            any::<u128>().prop_map(Node::Integer),
            (0u128..300).prop_map(Node::Integer),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(Node::Octets),
            ".{0,40}".prop_map(Node::Text),
            any::<bool>().prop_map(Node::Boolean),
            Just(Node::Null),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop::collection::vec(inner, 0..6).prop_map(Node::Sequence)
        })
    }

    fn write(node: &Node) -> Vec<u8> {
        match node {
            Node::Integer(v) => asn1::integer_u128(*v),
            Node::Octets(b) => asn1::octet_string(b),
            Node::Text(s) => asn1::utf8_string(s),
            Node::Boolean(b) => asn1::boolean(*b),
            Node::Null => asn1::null(),
            Node::Sequence(children) => {
                let parts: Vec<Vec<u8>> = children.iter().map(write).collect();
                let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
                asn1::sequence(&refs)
            }
        }
    }

    fn read(tlv: &Tlv<'_>) -> Result<Node, asn1::Asn1Error> {
        Ok(match tlv.tag {
            tag::INTEGER => {
                let magnitude = tlv.unsigned_integer_bytes()?;
                Node::Integer(
                    magnitude
                        .iter()
                        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b)),
                )
            }
            tag::OCTET_STRING => Node::Octets(tlv.octet_string()?.to_vec()),
            tag::UTF8_STRING => Node::Text(
                String::from_utf8(tlv.content.to_vec())
                    .map_err(|_| asn1::Asn1Error::InvalidInteger("not UTF-8"))?,
            ),
            tag::BOOLEAN => Node::Boolean(tlv.boolean()?),
            tag::NULL => {
                tlv.null()?;
                Node::Null
            }
            tag::SEQUENCE => {
                let mut children = Vec::new();
                for child in tlv.children_vec()? {
                    children.push(read(&child)?);
                }
                Node::Sequence(children)
            }
            _ => return Err(asn1::Asn1Error::InvalidInteger("unexpected tag")),
        })
    }

    fn read_all(bytes: &[u8]) -> Result<Node, asn1::Asn1Error> {
        let mut der = Der::new(bytes);
        let tlv = der.read()?;
        der.finish()?;
        read(&tlv)
    }

    proptest! {
        #[test]
        fn written_structures_read_back_the_same(value in node()) {
            let bytes = write(&value);
            prop_assert_eq!(read_all(&bytes).expect("strict read"), value);
        }

        #[test]
        fn a_padded_integer_is_refused(v in any::<u64>()) {
            // X.690 §8.3.2: a leading 0x00 before an octet without its high bit set.
            let minimal = asn1::integer_u64(v);
            let content = &minimal[2..];
            if content[0] & 0x80 == 0 {
                let mut padded = vec![tag::INTEGER, (content.len() + 1) as u8, 0x00];
                padded.extend_from_slice(content);
                prop_assert!(read_all(&padded).is_err());
            }
            prop_assert_eq!(read_all(&minimal).expect("minimal"), Node::Integer(u128::from(v)));
        }

        #[test]
        fn a_length_in_more_octets_than_needed_is_refused(content in prop::collection::vec(any::<u8>(), 0..256)) {
            // X.690 §10.1: the definite length in the fewest octets.
            let mut long = vec![tag::OCTET_STRING, 0x82];
            long.extend_from_slice(&(content.len() as u16).to_be_bytes());
            long.extend_from_slice(&content);
            prop_assert!(read_all(&long).is_err());
            prop_assert_eq!(read_all(&asn1::octet_string(&content)).expect("minimal"), Node::Octets(content));
        }
    }
}

mod window {
    use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, Weekday};

    use super::*;
    use crate::domain::window::acceptance_window;

    /// The last Sunday of `month` of `year`, at 01:00 UTC (Directive 2000/84/EC, art. 2–3).
    fn last_sunday_0100_utc(year: i32, month: Month) -> OffsetDateTime {
        let mut day = Date::from_calendar_date(year, month, month.length(year)).expect("date");
        while day.weekday() != Weekday::Sunday {
            day = day.previous_day().expect("date");
        }
        PrimitiveDateTime::new(day, Time::from_hms(1, 0, 0).expect("time")).assume_utc()
    }

    /// Paris's UTC offset at `t`, in hours: +2 in summer time, +1 otherwise.
    fn paris_offset_hours(t: OffsetDateTime) -> i64 {
        let year = t.year();
        let summer = t >= last_sunday_0100_utc(year, Month::March)
            && t < last_sunday_0100_utc(year, Month::October);
        if summer { 2 } else { 1 }
    }

    fn paris_wall_clock(t: OffsetDateTime) -> PrimitiveDateTime {
        let local = t + Duration::hours(paris_offset_hours(t));
        PrimitiveDateTime::new(local.date(), local.time())
    }

    proptest! {
        #[test]
        fn the_window_ends_at_the_last_microsecond_of_the_fifteenth_day_in_paris(
            // 2015-01-01T00:00:00Z to 2035-12-31T23:59:59Z.
            seconds in 1_420_070_400i64..2_082_758_399, micros in 0i64..1_000_000,
        ) {
            let notified = OffsetDateTime::from_unix_timestamp(seconds).expect("instant")
                + Duration::microseconds(micros);
            let window = acceptance_window(notified).expect("window");

            // Plain calendar arithmetic: the Paris day of the notification, plus 15 days
            // (the 15 days count from the day after, so the last one is day + 15).
            let notified_on = paris_wall_clock(notified).date();
            let last_day = notified_on + Duration::days(15);
            prop_assert_eq!(window.notified_on.to_string(), notified_on.to_string());
            prop_assert_eq!(window.last_day.to_string(), last_day.to_string());

            let last_instant = window.deadline - Duration::microseconds(1);
            let wall = paris_wall_clock(last_instant);
            prop_assert_eq!(wall.date(), last_day);
            prop_assert_eq!(wall.time(), Time::from_hms_micro(23, 59, 59, 999_999).expect("time"));
            // And the deadline itself is the first instant of the next Paris day.
            let next = paris_wall_clock(window.deadline);
            prop_assert_eq!(next.date(), last_day + Duration::days(1));
            prop_assert_eq!(next.time(), Time::MIDNIGHT);
        }
    }
}
