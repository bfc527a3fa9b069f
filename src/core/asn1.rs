//! A small DER (X.690 Distinguished Encoding Rules) writer and strict reader.
//!
//! The writer produces definite, minimal-length TLVs; `SET` / `SET OF` values are
//! sorted as X.690 §11.6 requires so that what we sign is exactly what a verifier
//! re-encodes. The reader is deliberately strict: it rejects indefinite lengths,
//! non-minimal lengths, non-minimal INTEGERs and trailing bytes, which is what
//! RFC 5652 (signed attributes), RFC 5280 (certificates) and RFC 3161 (TSTInfo)
//! require of DER input.
//!
//! Only low tag numbers (0..=30, one identifier octet) are supported; no structure
//! used by X.509, CMS or RFC 3161 needs more. This module does no I/O.

use std::cmp::Ordering;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Identifier octets of the universal and common tags used in this crate.
pub mod tag {
    /// BOOLEAN (universal 1).
    pub const BOOLEAN: u8 = 0x01;
    /// INTEGER (universal 2).
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING (universal 3).
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING (universal 4).
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL (universal 5).
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER (universal 6).
    pub const OID: u8 = 0x06;
    /// UTF8String (universal 12).
    pub const UTF8_STRING: u8 = 0x0c;
    /// PrintableString (universal 19).
    pub const PRINTABLE_STRING: u8 = 0x13;
    /// TeletexString / T61String (universal 20).
    pub const TELETEX_STRING: u8 = 0x14;
    /// IA5String (universal 22).
    pub const IA5_STRING: u8 = 0x16;
    /// UTCTime (universal 23).
    pub const UTC_TIME: u8 = 0x17;
    /// GeneralizedTime (universal 24).
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// UniversalString (universal 28).
    pub const UNIVERSAL_STRING: u8 = 0x1c;
    /// BMPString (universal 30).
    pub const BMP_STRING: u8 = 0x1e;
    /// SEQUENCE / SEQUENCE OF (universal 16, constructed).
    pub const SEQUENCE: u8 = 0x30;
    /// SET / SET OF (universal 17, constructed).
    pub const SET: u8 = 0x31;

    /// Identifier octet of a context-specific tag `[n]` (n must be below 31).
    pub const fn context(n: u8, constructed: bool) -> u8 {
        0x80 | if constructed { 0x20 } else { 0 } | (n & 0x1f)
    }
}

/// Errors raised while encoding or decoding DER.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Asn1Error {
    /// The input ended before the announced element did.
    #[error("DER: truncated input (need {needed} more bytes)")]
    Truncated {
        /// How many bytes were missing.
        needed: usize,
    },
    /// Indefinite length (0x80) is BER, never DER (X.690 §10.1).
    #[error("DER: indefinite length is not allowed")]
    IndefiniteLength,
    /// A length that could have been encoded in fewer octets (X.690 §10.1).
    #[error("DER: non-minimal length encoding")]
    NonMinimalLength,
    /// A length that does not fit this platform's `usize` or is absurdly large.
    #[error("DER: length too large")]
    LengthTooLarge,
    /// Tag numbers ≥ 31 are not used by the structures we handle.
    #[error("DER: high tag numbers are not supported")]
    HighTagNumber,
    /// Bytes left over after a complete element where none were expected.
    #[error("DER: {0} trailing bytes after the element")]
    TrailingData(usize),
    /// A different element was found than the structure requires.
    #[error("DER: expected tag 0x{expected:02x}, found 0x{found:02x}")]
    UnexpectedTag {
        /// Identifier octet that was required.
        expected: u8,
        /// Identifier octet that was found.
        found: u8,
    },
    /// An element was required but the enclosing structure had ended.
    #[error("DER: missing element with tag 0x{0:02x}")]
    Missing(u8),
    /// A primitive-only type was encoded constructed, or the reverse.
    #[error("DER: element 0x{0:02x} has the wrong primitive/constructed form")]
    WrongForm(u8),
    /// An INTEGER that is empty or not in its minimal two's-complement form (X.690 §8.3.2).
    #[error("DER: invalid INTEGER ({0})")]
    InvalidInteger(&'static str),
    /// An OBJECT IDENTIFIER that is malformed (X.690 §8.19).
    #[error("DER: invalid OBJECT IDENTIFIER ({0})")]
    InvalidOid(String),
    /// A BOOLEAN whose content is not exactly 0x00 or 0xFF (X.690 §11.1).
    #[error("DER: invalid BOOLEAN")]
    InvalidBoolean,
    /// A NULL with content.
    #[error("DER: invalid NULL")]
    InvalidNull,
    /// A BIT STRING that is empty, has more than 7 unused bits, or non-zero padding (X.690 §11.2).
    #[error("DER: invalid BIT STRING ({0})")]
    InvalidBitString(&'static str),
    /// A UTCTime / GeneralizedTime not in the DER form (X.690 §11.7, §11.8).
    #[error("DER: invalid time ({0})")]
    InvalidTime(String),
    /// A value that cannot be encoded (e.g. a year outside the type's range).
    #[error("DER: cannot encode {0}")]
    Unencodable(String),
}

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

/// Appends an identifier octet and a definite, minimal length (X.690 §8.1.3, §10.1).
pub fn write_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// Number of octets a header for `len` content bytes takes.
pub fn header_len(len: usize) -> usize {
    if len < 0x80 {
        2
    } else {
        2 + (usize::BITS as usize / 8 - (len.leading_zeros() as usize) / 8)
    }
}

/// Encodes one TLV with the given identifier octet and content.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_len(content.len()) + content.len());
    write_header(&mut out, tag, content.len());
    out.extend_from_slice(content);
    out
}

/// Encodes a TLV whose content is the concatenation of already-encoded parts.
pub fn constructed(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(header_len(len) + len);
    write_header(&mut out, tag, len);
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// SEQUENCE of already-encoded elements, in the given order.
pub fn sequence(elements: &[&[u8]]) -> Vec<u8> {
    constructed(tag::SEQUENCE, elements)
}

/// SET of already-encoded elements, sorted bytewise as DER requires (X.690 §11.6).
pub fn set(elements: &[&[u8]]) -> Vec<u8> {
    let mut sorted: Vec<&[u8]> = elements.to_vec();
    sorted.sort_by(|a, b| der_order(a, b));
    constructed(tag::SET, &sorted)
}

/// SET OF owned encodings, sorted bytewise (X.690 §11.6).
pub fn set_of_sorted(elements: Vec<Vec<u8>>) -> Vec<u8> {
    let refs: Vec<&[u8]> = elements.iter().map(Vec::as_slice).collect();
    set(&refs)
}

/// Sorts encodings for a DER `SET OF` and returns their concatenation (no header),
/// for use under an IMPLICIT tag such as CMS `[0] IMPLICIT CertificateSet`.
pub fn sorted_concat(elements: &[&[u8]]) -> Vec<u8> {
    let mut sorted: Vec<&[u8]> = elements.to_vec();
    sorted.sort_by(|a, b| der_order(a, b));
    sorted.concat()
}

/// X.690 §11.6 ordering: compare as octet strings, the shorter padded with zeros
/// at its end; equal-prefix shorter encodings come first.
fn der_order(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}

/// Context-specific tag `[tag]` around `content` (content must already be encoded
/// for EXPLICIT tagging, or be the raw contents for IMPLICIT tagging).
pub fn context(tag: u8, constructed: bool, content: &[u8]) -> Vec<u8> {
    tlv(tag::context(tag, constructed), content)
}

/// INTEGER from an unsigned big-endian magnitude, minimally encoded (X.690 §8.3.2):
/// leading zero octets are stripped and one 0x00 is prepended when the high bit is set.
/// An empty or all-zero input encodes 0.
pub fn integer_from_unsigned_be(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|b| **b == 0).count();
    let digits = &magnitude[skip..];
    if digits.is_empty() {
        return vec![tag::INTEGER, 1, 0];
    }
    let pad = digits[0] & 0x80 != 0;
    let len = digits.len() + usize::from(pad);
    let mut out = Vec::with_capacity(header_len(len) + len);
    write_header(&mut out, tag::INTEGER, len);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
    out
}

/// INTEGER from a `u64`.
pub fn integer_u64(value: u64) -> Vec<u8> {
    integer_from_unsigned_be(&value.to_be_bytes())
}

/// INTEGER from a `u128`.
pub fn integer_u128(value: u128) -> Vec<u8> {
    integer_from_unsigned_be(&value.to_be_bytes())
}

/// Content octets of an OBJECT IDENTIFIER in dotted form (X.690 §8.19).
pub fn oid_content(dotted: &str) -> Result<Vec<u8>, Asn1Error> {
    let bad = |why: &str| Asn1Error::InvalidOid(format!("{dotted:?}: {why}"));
    let arcs = dotted
        .split('.')
        .map(|arc| {
            if arc.is_empty() || !arc.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("arcs must be decimal numbers"));
            }
            if arc.len() > 1 && arc.starts_with('0') {
                return Err(bad("arcs must not have leading zeros"));
            }
            arc.parse::<u128>().map_err(|_| bad("arc too large"))
        })
        .collect::<Result<Vec<u128>, Asn1Error>>()?;
    if arcs.len() < 2 {
        return Err(bad("at least two arcs are required"));
    }
    // X.690 §8.19.4: the first two arcs are combined as 40 * X + Y, X in 0..=2,
    // and Y < 40 unless X = 2.
    if arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40) {
        return Err(bad("invalid first two arcs"));
    }
    let first = arcs[0]
        .checked_mul(40)
        .and_then(|v| v.checked_add(arcs[1]))
        .ok_or_else(|| bad("arc too large"))?;
    let mut out = Vec::with_capacity(arcs.len() * 2);
    for arc in std::iter::once(first).chain(arcs[2..].iter().copied()) {
        // Base-128, most significant group first, continuation bit on all but the last.
        let groups = (128 - arc.leading_zeros()).div_ceil(7).max(1);
        for i in (0..groups).rev() {
            let byte = ((arc >> (7 * i)) & 0x7f) as u8;
            out.push(if i == 0 { byte } else { byte | 0x80 });
        }
    }
    Ok(out)
}

/// OBJECT IDENTIFIER TLV from its dotted form.
pub fn oid(dotted: &str) -> Result<Vec<u8>, Asn1Error> {
    Ok(tlv(tag::OID, &oid_content(dotted)?))
}

/// OCTET STRING.
pub fn octet_string(content: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, content)
}

/// BIT STRING with zero unused bits (the only form used for keys and signatures).
pub fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_len(bytes.len() + 1) + bytes.len() + 1);
    write_header(&mut out, tag::BIT_STRING, bytes.len() + 1);
    out.push(0);
    out.extend_from_slice(bytes);
    out
}

/// BIT STRING for a named-bit list (e.g. PKIFailureInfo, KeyUsage): bit 0 is the
/// most significant bit of the first octet; trailing zero bits are removed as
/// X.690 §11.2.2 requires.
pub fn named_bits(bits: &[usize]) -> Vec<u8> {
    let Some(max) = bits.iter().copied().max() else {
        return vec![tag::BIT_STRING, 1, 0];
    };
    let mut bytes = vec![0u8; max / 8 + 1];
    for bit in bits {
        bytes[bit / 8] |= 0x80 >> (bit % 8);
    }
    let unused = (7 - max % 8) as u8;
    let mut out = Vec::with_capacity(bytes.len() + 3);
    write_header(&mut out, tag::BIT_STRING, bytes.len() + 1);
    out.push(unused);
    out.extend_from_slice(&bytes);
    out
}

/// BOOLEAN (DER: TRUE is 0xFF, X.690 §11.1).
pub fn boolean(value: bool) -> Vec<u8> {
    vec![tag::BOOLEAN, 1, if value { 0xff } else { 0 }]
}

/// NULL.
pub fn null() -> Vec<u8> {
    vec![tag::NULL, 0]
}

/// UTF8String.
pub fn utf8_string(value: &str) -> Vec<u8> {
    tlv(tag::UTF8_STRING, value.as_bytes())
}

/// UTCTime `YYMMDDHHMMSSZ` (X.690 §11.8); only years 1950..=2049 (RFC 5280 §4.1.2.5.1).
pub fn utc_time(at: OffsetDateTime) -> Result<Vec<u8>, Asn1Error> {
    let at = at.to_offset(UtcOffset::UTC);
    if !(1950..=2049).contains(&at.year()) {
        return Err(Asn1Error::Unencodable(format!(
            "year {} as UTCTime",
            at.year()
        )));
    }
    let s = format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        at.year() % 100,
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    Ok(tlv(tag::UTC_TIME, s.as_bytes()))
}

/// GeneralizedTime `YYYYMMDDHHMMSSZ`, whole seconds (fraction dropped), UTC (X.690 §11.7).
pub fn generalized_time(at: OffsetDateTime) -> Result<Vec<u8>, Asn1Error> {
    let at = at.to_offset(UtcOffset::UTC);
    if !(0..=9999).contains(&at.year()) {
        return Err(Asn1Error::Unencodable(format!(
            "year {} as GeneralizedTime",
            at.year()
        )));
    }
    let s = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    Ok(tlv(tag::GENERALIZED_TIME, s.as_bytes()))
}

/// The X.509 / CMS `Time` choice: UTCTime through 2049, GeneralizedTime from 2050
/// (RFC 5280 §4.1.2.5, RFC 5652 §11.3).
pub fn time_choice(at: OffsetDateTime) -> Result<Vec<u8>, Asn1Error> {
    let year = at.to_offset(UtcOffset::UTC).year();
    if (1950..2050).contains(&year) {
        utc_time(at)
    } else {
        generalized_time(at)
    }
}

// ---------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------

/// One decoded element: its identifier octet, header size, content and full encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Identifier octet (class, form and tag number).
    pub tag: u8,
    /// Number of identifier and length octets.
    pub header_len: usize,
    /// Content octets.
    pub content: &'a [u8],
    /// The complete encoding (header and content).
    pub raw: &'a [u8],
}

/// A cursor over consecutive DER elements (the contents of a constructed value,
/// or a whole buffer).
#[derive(Debug, Clone, Copy)]
pub struct Der<'a> {
    data: &'a [u8],
}

/// Decodes exactly one element spanning all of `data` (no trailing bytes).
pub fn parse_single(data: &[u8]) -> Result<Tlv<'_>, Asn1Error> {
    let mut der = Der::new(data);
    let tlv = der.read()?;
    der.finish()?;
    Ok(tlv)
}

/// Decodes exactly one element with the given tag spanning all of `data`.
pub fn parse_single_expected(data: &[u8], expected: u8) -> Result<Tlv<'_>, Asn1Error> {
    let tlv = parse_single(data)?;
    tlv.expect_tag(expected)?;
    Ok(tlv)
}

impl<'a> Der<'a> {
    /// A cursor over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Der { data }
    }

    /// True when every element has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The bytes not yet read.
    pub fn remaining(&self) -> &'a [u8] {
        self.data
    }

    /// Identifier octet of the next element, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Errors when bytes remain (X.690: a single element was expected).
    pub fn finish(&self) -> Result<(), Asn1Error> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(Asn1Error::TrailingData(self.data.len()))
        }
    }

    /// Reads the next element.
    pub fn read(&mut self) -> Result<Tlv<'a>, Asn1Error> {
        let data = self.data;
        let (&tag, rest) = data
            .split_first()
            .ok_or(Asn1Error::Truncated { needed: 1 })?;
        if tag & 0x1f == 0x1f {
            return Err(Asn1Error::HighTagNumber);
        }
        let (&first, rest) = rest
            .split_first()
            .ok_or(Asn1Error::Truncated { needed: 1 })?;
        let (len, len_octets) = if first < 0x80 {
            (usize::from(first), 0usize)
        } else if first == 0x80 {
            return Err(Asn1Error::IndefiniteLength);
        } else {
            let n = usize::from(first & 0x7f);
            if n > std::mem::size_of::<usize>() || n > 4 {
                // 4 GiB is far beyond anything we accept; refuse rather than overflow.
                return Err(Asn1Error::LengthTooLarge);
            }
            if rest.len() < n {
                return Err(Asn1Error::Truncated {
                    needed: n - rest.len(),
                });
            }
            let octets = &rest[..n];
            // X.690 §10.1: the long form must use the fewest octets, so no leading
            // zero octet, and it must not be used for lengths below 128.
            if octets[0] == 0 {
                return Err(Asn1Error::NonMinimalLength);
            }
            let len = octets
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return Err(Asn1Error::NonMinimalLength);
            }
            (len, n)
        };
        let header_len = 2 + len_octets;
        let rest = &rest[len_octets..];
        if rest.len() < len {
            return Err(Asn1Error::Truncated {
                needed: len - rest.len(),
            });
        }
        let total = header_len + len;
        let tlv = Tlv {
            tag,
            header_len,
            content: &rest[..len],
            raw: &data[..total],
        };
        self.data = &data[total..];
        Ok(tlv)
    }

    /// Reads the next element and requires its identifier octet to be `expected`.
    pub fn read_expected(&mut self, expected: u8) -> Result<Tlv<'a>, Asn1Error> {
        if self.data.is_empty() {
            return Err(Asn1Error::Missing(expected));
        }
        let tlv = self.read()?;
        tlv.expect_tag(expected)?;
        Ok(tlv)
    }

    /// Reads the next element only if its identifier octet is `expected`.
    pub fn read_optional(&mut self, expected: u8) -> Result<Option<Tlv<'a>>, Asn1Error> {
        if self.peek_tag() == Some(expected) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Reads a SEQUENCE and returns a cursor over its children.
    pub fn read_sequence(&mut self) -> Result<Der<'a>, Asn1Error> {
        Ok(Der::new(self.read_expected(tag::SEQUENCE)?.content))
    }
}

impl<'a> Tlv<'a> {
    /// Errors unless the identifier octet is `expected`.
    pub fn expect_tag(&self, expected: u8) -> Result<(), Asn1Error> {
        if self.tag == expected {
            Ok(())
        } else {
            Err(Asn1Error::UnexpectedTag {
                expected,
                found: self.tag,
            })
        }
    }

    /// True when the constructed bit is set.
    pub fn is_constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }

    /// A cursor over the children of a constructed element.
    pub fn children(&self) -> Result<Der<'a>, Asn1Error> {
        if !self.is_constructed() {
            return Err(Asn1Error::WrongForm(self.tag));
        }
        Ok(Der::new(self.content))
    }

    /// All children of a constructed element.
    pub fn children_vec(&self) -> Result<Vec<Tlv<'a>>, Asn1Error> {
        let mut der = self.children()?;
        let mut out = Vec::new();
        while !der.is_empty() {
            out.push(der.read()?);
        }
        Ok(out)
    }

    /// The single child of an EXPLICIT tag or a one-element SET.
    pub fn single_child(&self) -> Result<Tlv<'a>, Asn1Error> {
        let mut der = self.children()?;
        let child = der.read()?;
        der.finish()?;
        Ok(child)
    }

    fn primitive(&self, expected: u8) -> Result<&'a [u8], Asn1Error> {
        self.expect_tag(expected)?;
        Ok(self.content)
    }

    /// INTEGER content as minimal two's-complement big-endian octets (X.690 §8.3.2).
    pub fn integer_bytes(&self) -> Result<&'a [u8], Asn1Error> {
        integer_content(self.primitive(tag::INTEGER)?)
    }

    /// Non-negative INTEGER as its big-endian magnitude: the sign-padding 0x00 is
    /// removed (zero is returned as `[0x00]`); negative values are rejected.
    pub fn unsigned_integer_bytes(&self) -> Result<&'a [u8], Asn1Error> {
        unsigned_magnitude(self.integer_bytes()?)
    }

    /// Non-negative INTEGER that fits a `u64`.
    pub fn u64(&self) -> Result<u64, Asn1Error> {
        let magnitude = self.unsigned_integer_bytes()?;
        if magnitude.len() > 8 {
            return Err(Asn1Error::InvalidInteger("does not fit 64 bits"));
        }
        Ok(magnitude
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// OBJECT IDENTIFIER in dotted form.
    pub fn oid(&self) -> Result<String, Asn1Error> {
        oid_to_string(self.primitive(tag::OID)?)
    }

    /// OCTET STRING content (primitive form only, as DER requires).
    pub fn octet_string(&self) -> Result<&'a [u8], Asn1Error> {
        self.primitive(tag::OCTET_STRING)
    }

    /// BOOLEAN (DER: 0x00 or 0xFF only).
    pub fn boolean(&self) -> Result<bool, Asn1Error> {
        match self.primitive(tag::BOOLEAN)? {
            [0x00] => Ok(false),
            [0xff] => Ok(true),
            _ => Err(Asn1Error::InvalidBoolean),
        }
    }

    /// NULL (no content).
    pub fn null(&self) -> Result<(), Asn1Error> {
        if self.primitive(tag::NULL)?.is_empty() {
            Ok(())
        } else {
            Err(Asn1Error::InvalidNull)
        }
    }

    /// BIT STRING as (unused bit count, octets); padding bits must be zero (X.690 §11.2.1).
    pub fn bit_string(&self) -> Result<(u8, &'a [u8]), Asn1Error> {
        let content = self.primitive(tag::BIT_STRING)?;
        let (&unused, bytes) = content
            .split_first()
            .ok_or(Asn1Error::InvalidBitString("empty"))?;
        if unused > 7 || (bytes.is_empty() && unused != 0) {
            return Err(Asn1Error::InvalidBitString("bad unused-bit count"));
        }
        if let Some(last) = bytes.last()
            && last & ((1u8 << unused) - 1) != 0
        {
            return Err(Asn1Error::InvalidBitString("non-zero padding bits"));
        }
        Ok((unused, bytes))
    }

    /// BIT STRING with no unused bits (keys, signatures).
    pub fn bit_string_octets(&self) -> Result<&'a [u8], Asn1Error> {
        match self.bit_string()? {
            (0, bytes) => Ok(bytes),
            _ => Err(Asn1Error::InvalidBitString("expected whole octets")),
        }
    }

    /// Named-bit BIT STRING as a bit mask, bit 0 in the lowest position of the result.
    pub fn named_bits(&self) -> Result<u64, Asn1Error> {
        let (_, bytes) = self.bit_string()?;
        if bytes.len() > 8 {
            return Err(Asn1Error::InvalidBitString("too many named bits"));
        }
        let mut mask = 0u64;
        for (i, byte) in bytes.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    mask |= 1 << (i * 8 + bit);
                }
            }
        }
        Ok(mask)
    }

    /// GeneralizedTime in DER form `YYYYMMDDHHMMSS[.f*]Z`: seconds required, optional
    /// fraction without trailing zeros, `Z` required (X.690 §11.7; RFC 3161 §2.4.2).
    pub fn generalized_time(&self) -> Result<OffsetDateTime, Asn1Error> {
        let s = self.primitive(tag::GENERALIZED_TIME)?;
        parse_generalized_time(s)
    }

    /// UTCTime in DER form `YYMMDDHHMMSSZ`; years 50..99 are 19xx (RFC 5280 §4.1.2.5.1).
    pub fn utc_time(&self) -> Result<OffsetDateTime, Asn1Error> {
        let s = self.primitive(tag::UTC_TIME)?;
        parse_utc_time(s)
    }

    /// Either time type (the X.509 / CMS `Time` choice).
    pub fn time(&self) -> Result<OffsetDateTime, Asn1Error> {
        match self.tag {
            tag::UTC_TIME => self.utc_time(),
            tag::GENERALIZED_TIME => self.generalized_time(),
            found => Err(Asn1Error::UnexpectedTag {
                expected: tag::GENERALIZED_TIME,
                found,
            }),
        }
    }
}

/// Checks INTEGER content for minimality (X.690 §8.3.2) and returns it.
pub fn integer_content(content: &[u8]) -> Result<&[u8], Asn1Error> {
    match content {
        [] => Err(Asn1Error::InvalidInteger("empty")),
        [0x00, next, ..] if next & 0x80 == 0 => Err(Asn1Error::InvalidInteger("non-minimal")),
        [0xff, next, ..] if next & 0x80 != 0 => Err(Asn1Error::InvalidInteger("non-minimal")),
        _ => Ok(content),
    }
}

/// Magnitude of a minimal non-negative INTEGER content (strips the sign pad).
pub fn unsigned_magnitude(content: &[u8]) -> Result<&[u8], Asn1Error> {
    match content {
        [] => Err(Asn1Error::InvalidInteger("empty")),
        [first, ..] if first & 0x80 != 0 => Err(Asn1Error::InvalidInteger("negative")),
        [0x00, rest @ ..] if !rest.is_empty() => Ok(rest),
        _ => Ok(content),
    }
}

/// Dotted form of OBJECT IDENTIFIER content octets (X.690 §8.19).
pub fn oid_to_string(content: &[u8]) -> Result<String, Asn1Error> {
    if content.is_empty() {
        return Err(Asn1Error::InvalidOid("empty".into()));
    }
    if content.last().is_some_and(|b| b & 0x80 != 0) {
        return Err(Asn1Error::InvalidOid("truncated arc".into()));
    }
    let mut arcs: Vec<u128> = Vec::new();
    let mut value: u128 = 0;
    let mut start = true;
    for &b in content {
        // X.690 §8.19.2: each subidentifier uses the fewest octets, so it never
        // starts with 0x80.
        if start && b == 0x80 {
            return Err(Asn1Error::InvalidOid("non-minimal arc".into()));
        }
        if value > (u128::MAX >> 7) {
            return Err(Asn1Error::InvalidOid("arc too large".into()));
        }
        value = (value << 7) | u128::from(b & 0x7f);
        start = b & 0x80 == 0;
        if start {
            arcs.push(value);
            value = 0;
        }
    }
    let first = arcs[0];
    let (x, y) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut out = format!("{x}.{y}");
    for arc in &arcs[1..] {
        out.push('.');
        out.push_str(&arc.to_string());
    }
    Ok(out)
}

fn digits(s: &[u8], what: &str) -> Result<u32, Asn1Error> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return Err(Asn1Error::InvalidTime(format!("{what} is not numeric")));
    }
    Ok(s.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

fn build_time(year: i32, rest: &[u8], nanos: u32, raw: &[u8]) -> Result<OffsetDateTime, Asn1Error> {
    let bad = || Asn1Error::InvalidTime(String::from_utf8_lossy(raw).into_owned());
    let month = Month::try_from(digits(&rest[0..2], "month")? as u8).map_err(|_| bad())?;
    let day = digits(&rest[2..4], "day")? as u8;
    let hour = digits(&rest[4..6], "hour")? as u8;
    let minute = digits(&rest[6..8], "minute")? as u8;
    let second = digits(&rest[8..10], "second")? as u8;
    let date = Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    let time = Time::from_hms_nano(hour, minute, second, nanos).map_err(|_| bad())?;
    Ok(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Parses GeneralizedTime content (see [`Tlv::generalized_time`]).
pub fn parse_generalized_time(s: &[u8]) -> Result<OffsetDateTime, Asn1Error> {
    let bad = |why: &str| {
        Asn1Error::InvalidTime(format!(
            "GeneralizedTime {:?}: {why}",
            String::from_utf8_lossy(s)
        ))
    };
    if s.len() < 15 || s.last() != Some(&b'Z') {
        return Err(bad("must be YYYYMMDDHHMMSS[.fff]Z"));
    }
    let body = &s[..s.len() - 1];
    let (main, fraction) = match body.iter().position(|b| *b == b'.') {
        Some(14) => (&body[..14], Some(&body[15..])),
        Some(_) => return Err(bad("misplaced fraction")),
        None if body.len() == 14 => (body, None),
        None => return Err(bad("must be YYYYMMDDHHMMSS[.fff]Z")),
    };
    let nanos = match fraction {
        None => 0,
        Some(f) => {
            // X.690 §11.7.3/4: no trailing zeros, and no empty fraction.
            if f.is_empty() || f.last() == Some(&b'0') {
                return Err(bad("fraction must be non-empty without trailing zeros"));
            }
            if f.len() > 9 {
                return Err(bad("fraction finer than nanoseconds"));
            }
            digits(f, "fraction")? * 10u32.pow(9 - f.len() as u32)
        }
    };
    let year = digits(&main[0..4], "year")? as i32;
    build_time(year, &main[4..], nanos, s)
}

/// Parses UTCTime content (see [`Tlv::utc_time`]).
pub fn parse_utc_time(s: &[u8]) -> Result<OffsetDateTime, Asn1Error> {
    if s.len() != 13 || s[12] != b'Z' {
        return Err(Asn1Error::InvalidTime(format!(
            "UTCTime {:?}: must be YYMMDDHHMMSSZ",
            String::from_utf8_lossy(s)
        )));
    }
    let yy = digits(&s[0..2], "year")? as i32;
    let year = if yy >= 50 { 1900 + yy } else { 2000 + yy };
    build_time(year, &s[2..12], 0, s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn hexs(b: &[u8]) -> String {
        hex::encode(b)
    }

    #[test]
    fn integer_minimal_edge_cases() {
        assert_eq!(hexs(&integer_from_unsigned_be(&[])), "020100");
        assert_eq!(hexs(&integer_from_unsigned_be(&[0, 0])), "020100");
        assert_eq!(hexs(&integer_from_unsigned_be(&[0x7f])), "02017f");
        assert_eq!(hexs(&integer_from_unsigned_be(&[0x80])), "02020080");
        assert_eq!(hexs(&integer_from_unsigned_be(&[0, 0, 0x80])), "02020080");
        assert_eq!(hexs(&integer_from_unsigned_be(&[0xff, 0x00])), "020300ff00");
        assert_eq!(hexs(&integer_u64(256)), "02020100");
        assert_eq!(hexs(&integer_u64(u64::MAX)), "020900ffffffffffffffff");
        assert_eq!(
            hexs(&integer_u128(1u128 << 64 | 1)),
            "0209010000000000000001"
        );
    }

    #[test]
    fn integer_round_trip_and_rejection() {
        for v in [0u64, 1, 0x7f, 0x80, 0xff, 0x100, 0xff00, u64::MAX] {
            let enc = integer_u64(v);
            let tlv = parse_single(&enc).expect("parse");
            assert_eq!(tlv.u64().expect("u64"), v);
        }
        for bad in [
            &[0x02u8, 0x00][..],
            &[0x02, 0x02, 0x00, 0x7f],
            &[0x02, 0x02, 0xff, 0x80],
        ] {
            let tlv = parse_single(bad).expect("tlv");
            assert!(tlv.integer_bytes().is_err(), "{bad:02x?}");
        }
        let neg = parse_single(&[0x02, 0x01, 0x80]).expect("tlv");
        assert_eq!(neg.integer_bytes().expect("ok"), &[0x80]);
        assert!(neg.unsigned_integer_bytes().is_err());
        let pos = parse_single(&[0x02, 0x02, 0x00, 0x80]).expect("tlv");
        assert_eq!(pos.unsigned_integer_bytes().expect("ok"), &[0x80]);
    }

    #[test]
    fn oid_round_trip() {
        for dotted in [
            "1.2.840.113549.1.7.2",
            "2.16.840.1.101.3.4.2.1",
            "1.2.840.10045.4.3.2",
            "1.3.6.1.5.5.7.3.8",
            "2.999.3",
            "0.0",
        ] {
            let enc = oid(dotted).expect("encode");
            assert_eq!(parse_single(&enc).expect("tlv").oid().expect("oid"), dotted);
        }
        assert_eq!(
            hexs(&oid("1.2.840.113549.1.7.2").expect("encode")),
            "06092a864886f70d010702"
        );
        assert_eq!(hexs(&oid("2.999.3").expect("encode")), "0603883703");
        for bad in ["1", "3.1", "1.40", "1..2", "1.02", "a.b"] {
            assert!(oid(bad).is_err(), "{bad}");
        }
        assert!(oid_to_string(&[0x2a, 0x80, 0x01]).is_err());
        assert!(oid_to_string(&[0x2a, 0x86]).is_err());
    }

    #[test]
    fn set_is_sorted() {
        let a = integer_u64(2);
        let b = integer_u64(1);
        let c = octet_string(&[0]);
        let s = set(&[&a, &c, &b]);
        assert_eq!(hexs(&s), "3109020101020102040100");
        assert_eq!(set_of_sorted(vec![a.clone(), b.clone()]), set(&[&b, &a]));
        // A shorter encoding that is a prefix sorts first.
        let short = vec![0x04, 0x01, 0x05];
        let long = vec![0x04, 0x02, 0x05, 0x00];
        assert_eq!(
            set(&[&long, &short]),
            constructed(tag::SET, &[&short, &long])
        );
    }

    #[test]
    fn lengths_are_minimal_and_checked() {
        let big = vec![0u8; 300];
        let enc = octet_string(&big);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(header_len(300), 4);
        assert_eq!(header_len(127), 2);
        assert_eq!(header_len(128), 3);
        let t = parse_single(&enc).expect("parse");
        assert_eq!(t.content.len(), 300);
        assert_eq!(t.header_len, 4);
        assert_eq!(
            parse_single(&[0x04, 0x80, 0x00, 0x00]),
            Err(Asn1Error::IndefiniteLength)
        );
        assert_eq!(
            parse_single(&[0x04, 0x81, 0x01, 0x00]),
            Err(Asn1Error::NonMinimalLength)
        );
        let mut padded = vec![0x04, 0x82, 0x00, 0x80];
        padded.extend_from_slice(&[0; 0x80]);
        assert_eq!(parse_single(&padded), Err(Asn1Error::NonMinimalLength));
        assert_eq!(
            parse_single(&[0x04, 0x01, 0x00, 0x00]),
            Err(Asn1Error::TrailingData(1))
        );
        assert!(matches!(
            parse_single(&[0x04, 0x02, 0x00]),
            Err(Asn1Error::Truncated { .. })
        ));
        assert_eq!(
            parse_single(&[0x1f, 0x01, 0x00]),
            Err(Asn1Error::HighTagNumber)
        );
    }

    #[test]
    fn times() {
        let t = datetime!(2025-03-04 05:06:07.5 UTC);
        let g = generalized_time(t).expect("gt");
        assert_eq!(&g[2..], b"20250304050607Z");
        assert_eq!(
            parse_single(&g)
                .expect("tlv")
                .generalized_time()
                .expect("parse"),
            datetime!(2025-03-04 05:06:07 UTC)
        );
        let u = utc_time(t).expect("ut");
        assert_eq!(&u[2..], b"250304050607Z");
        assert_eq!(
            parse_single(&u).expect("tlv").utc_time().expect("parse"),
            datetime!(2025-03-04 05:06:07 UTC)
        );
        assert_eq!(
            time_choice(datetime!(2050-01-01 0:00 UTC)).expect("t")[0],
            tag::GENERALIZED_TIME
        );
        assert_eq!(
            time_choice(datetime!(2049-12-31 0:00 UTC)).expect("t")[0],
            tag::UTC_TIME
        );
        assert!(utc_time(datetime!(2050-01-01 0:00 UTC)).is_err());
        assert_eq!(
            parse_generalized_time(b"20250304050607.125Z").expect("frac"),
            datetime!(2025-03-04 05:06:07.125 UTC)
        );
        for bad in [
            &b"20250304050607.120Z"[..],
            b"20250304050607.Z",
            b"20250304050607",
            b"202503040506Z",
            b"20250304050607+0100",
            b"20251304050607Z",
        ] {
            assert!(
                parse_generalized_time(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_utc_time(b"990101000000Z").expect("1999"),
            datetime!(1999-01-01 0:00 UTC)
        );
        assert!(parse_utc_time(b"9901010000Z").is_err());
    }

    #[test]
    fn primitives() {
        assert_eq!(parse_single(&boolean(true)).expect("b").boolean(), Ok(true));
        assert_eq!(
            parse_single(&boolean(false)).expect("b").boolean(),
            Ok(false)
        );
        assert!(
            parse_single(&[0x01, 0x01, 0x01])
                .expect("b")
                .boolean()
                .is_err()
        );
        assert!(parse_single(&null()).expect("n").null().is_ok());
        let bs = bit_string(&[1, 2]);
        assert_eq!(
            parse_single(&bs).expect("bs").bit_string_octets(),
            Ok(&[1u8, 2][..])
        );
        // PKIFailureInfo badAlg(0) = 03 02 07 80; unacceptedPolicy(15) = 03 03 00 00 01.
        assert_eq!(hexs(&named_bits(&[0])), "03020780");
        assert_eq!(hexs(&named_bits(&[15])), "0303000001");
        assert_eq!(
            parse_single(&named_bits(&[5])).expect("nb").named_bits(),
            Ok(1 << 5)
        );
        assert!(
            parse_single(&[0x03, 0x02, 0x01, 0x01])
                .expect("bs")
                .bit_string()
                .is_err()
        );
        let seq = sequence(&[&integer_u64(1), &octet_string(b"x")]);
        let tlv = parse_single_expected(&seq, tag::SEQUENCE).expect("seq");
        let kids = tlv.children_vec().expect("children");
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[1].octet_string(), Ok(&b"x"[..]));
        assert_eq!(context(0, true, kids[0].raw)[0], 0xa0);
    }
}
