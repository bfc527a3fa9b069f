//! PAdES signatures (ETSI EN 319 142-1) on the PDFs the service writes, added as an
//! incremental update (ISO 32000-1 §7.5.6) so that the original bytes stay as they were.
//!
//! [`prepare`] appends to a PDF:
//!
//! - a signature dictionary (§12.8.1) with `/Filter /Adobe.PPKLite`, `/SubFilter
//!   /ETSI.CAdES.detached` (EN 319 142-1 §5.1), the claimed signing time `/M`, and a
//!   `/ByteRange` and `/Contents` placeholder;
//! - a signature field merged with its widget annotation (§12.7.4.5), on the first page, over
//!   the rectangle the caller gives (the visible signature box the page draws) or invisible;
//! - the catalog again, with an `/AcroForm` whose `/SigFlags` are 3 (signatures exist, the
//!   file is to be appended to only), and the first page again, with the widget in its
//!   `/Annots`;
//! - a cross-reference section and a trailer with `/Prev`.
//!
//! [`Prepared::digest`] is the SHA-256 of every byte but the `/Contents` value: what the CMS
//! signature's message-digest attribute covers. [`Prepared::finish`] writes the DER CMS
//! (hex, zero-padded) into the placeholder. A reader checks the signature with any PAdES
//! validator; `pdfsig` and Acrobat show it in their signature panels.
//!
//! Only what the service's writers produce is read: a classic cross-reference table (no
//! cross-reference streams), an unencrypted file, a catalog and a first page that have no
//! form yet. Anything else is refused with [`PadesError`]. Pure: bytes in, bytes out.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Hex digits reserved for the CMS signature: 16 KiB of DER, room for the certificate chain,
/// the signature timestamp token with its TSA chain, and revocation data.
pub const CONTENTS_CAPACITY: usize = 16 * 1024;

/// Why a PDF could not be prepared or completed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PadesError {
    /// The file is not laid out as the service's writers lay it out.
    #[error("cannot sign this PDF: {0}")]
    Unsupported(String),
    /// The signature is larger than the space reserved for it.
    #[error("the CMS signature ({0} bytes) exceeds the {CONTENTS_CAPACITY} bytes reserved")]
    TooLarge(usize),
}

fn unsupported(what: impl Into<String>) -> PadesError {
    PadesError::Unsupported(what.into())
}

/// What the signature field says about the signature.
#[derive(Debug, Clone)]
pub struct SignatureField<'a> {
    /// The signer, shown by readers (`/Name`).
    pub signer: &'a str,
    /// Why it was signed (`/Reason`).
    pub reason: &'a str,
    /// Where to reach the signer (`/ContactInfo`).
    pub contact: &'a str,
    /// The claimed signing time (`/M`); the signature timestamp is what proves the time.
    pub at: OffsetDateTime,
    /// The visible box on the first page, `[x1, y1, x2, y2]` in points; `None`: invisible.
    pub rect: Option<[f32; 4]>,
}

/// A PDF with a signature placeholder, waiting for its CMS.
#[derive(Debug, Clone)]
pub struct Prepared {
    bytes: Vec<u8>,
    /// Offset of the `<` opening the `/Contents` hex string.
    contents_start: usize,
    /// Offset just after its `>`.
    contents_end: usize,
}

impl Prepared {
    /// The SHA-256 of the signed byte ranges: the file without the `/Contents` value.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(&self.bytes[..self.contents_start]);
        h.update(&self.bytes[self.contents_end..]);
        h.finalize().into()
    }

    /// The signed file: `cms` (DER) written into the placeholder.
    pub fn finish(mut self, cms: &[u8]) -> Result<Vec<u8>, PadesError> {
        let hex = hex::encode_upper(cms);
        if hex.len() > CONTENTS_CAPACITY * 2 {
            return Err(PadesError::TooLarge(cms.len()));
        }
        let start = self.contents_start + 1;
        self.bytes[start..start + hex.len()].copy_from_slice(hex.as_bytes());
        Ok(self.bytes)
    }
}

/// Appends the signature placeholder, field and form to `pdf` (see the module docs).
pub fn prepare(pdf: &[u8], field: &SignatureField<'_>) -> Result<Prepared, PadesError> {
    let original = Original::read(pdf)?;
    let catalog = original.object(original.root)?;
    if entry(catalog, b"AcroForm")?.is_some() {
        return Err(unsupported("the catalog already has a form"));
    }
    let page_ref = original.first_page(catalog)?;
    let page = original.object(page_ref)?;

    let mut update = Update {
        out: pdf.to_vec(),
        offsets: Vec::new(),
    };
    if !update.out.ends_with(b"\n") {
        update.out.push(b'\n');
    }
    let sig = original.size;
    let widget = sig + 1;
    let (byte_range_at, contents_start, contents_end) = update.signature_dictionary(sig, field);
    update.widget(widget, sig, page_ref, field.rect);

    // The catalog with the form, the first page with the widget.
    let form = format!("/AcroForm << /Fields [{widget} 0 R] /SigFlags 3 >>");
    update.object(original.root, &with_entry(catalog, &form)?);
    let annotated = match entry(page, b"Annots")? {
        None => with_entry(page, &format!("/Annots [{widget} 0 R]"))?,
        Some(range) if page[range.start] == b'[' => {
            let close = range.end - 1;
            let mut dict = page[..close].to_vec();
            dict.extend_from_slice(format!(" {widget} 0 R").as_bytes());
            dict.extend_from_slice(&page[close..]);
            dict
        }
        Some(_) => {
            return Err(unsupported(
                "the first page's /Annots is not a direct array",
            ));
        }
    };
    update.object(page_ref, &annotated);
    let mut out = update.finish(&original, widget + 2);

    let range = format!(
        "[0 {:>10} {:>10} {:>10}]",
        contents_start,
        contents_end,
        out.len() - contents_end
    );
    out[byte_range_at..byte_range_at + range.len()].copy_from_slice(range.as_bytes());
    Ok(Prepared {
        bytes: out,
        contents_start,
        contents_end,
    })
}

/// The file being extended, with the offset of each object the update writes.
struct Update {
    out: Vec<u8>,
    offsets: Vec<(u32, usize)>,
}

impl Update {
    /// Object `number` with the signature dictionary and its fixed-width placeholders; the
    /// offsets of the `/ByteRange` array and of the `/Contents` string's `<` and end.
    fn signature_dictionary(
        &mut self,
        number: u32,
        field: &SignatureField<'_>,
    ) -> (usize, usize, usize) {
        let out = &mut self.out;
        self.offsets.push((number, out.len()));
        out.extend_from_slice(
            format!(
                "{number} 0 obj\n<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /ByteRange "
            )
            .as_bytes(),
        );
        let byte_range_at = out.len();
        out.extend_from_slice(format!("[0 {:>10} {:>10} {:>10}]", 0, 0, 0).as_bytes());
        out.extend_from_slice(b" /Contents ");
        let contents_start = out.len();
        out.push(b'<');
        out.extend(std::iter::repeat_n(b'0', CONTENTS_CAPACITY * 2));
        out.push(b'>');
        let contents_end = out.len();
        out.extend_from_slice(
            format!(
                " /M {} /Name {} /Reason {} /ContactInfo {} >>\nendobj\n",
                pdf_date(field.at),
                text_string(field.signer),
                text_string(field.reason),
                text_string(field.contact),
            )
            .as_bytes(),
        );
        (byte_range_at, contents_start, contents_end)
    }

    /// Object `number`, the field merged with its widget, printed and locked (F 132), and
    /// `number + 1`, its empty appearance: what the box shows is the page's own drawing.
    fn widget(&mut self, number: u32, sig: u32, page: ObjRef, rect: Option<[f32; 4]>) {
        let appearance = number + 1;
        let [x1, y1, x2, y2] = rect.unwrap_or([0.0; 4]);
        let (width, height) = ((x2 - x1).abs(), (y2 - y1).abs());
        self.offsets.push((number, self.out.len()));
        self.out.extend_from_slice(
            format!(
                "{number} 0 obj\n<< /Type /Annot /Subtype /Widget /FT /Sig /T {} /V {sig} 0 R /F 132 /Rect [{x1} {y1} {x2} {y2}] /P {} 0 R /AP << /N {appearance} 0 R >> >>\nendobj\n",
                text_string("Cachet du prestataire"),
                page.0,
            )
            .as_bytes(),
        );
        self.offsets.push((appearance, self.out.len()));
        self.out.extend_from_slice(
            format!(
                "{appearance} 0 obj\n<< /Type /XObject /Subtype /Form /BBox [0 0 {width} {height}] /Length 0 >>\nstream\n\nendstream\nendobj\n"
            )
            .as_bytes(),
        );
    }

    /// A new version of object `reference`.
    fn object(&mut self, reference: ObjRef, dict: &[u8]) {
        self.offsets.push((reference.0, self.out.len()));
        write_object(&mut self.out, reference, dict);
    }

    /// The cross-reference section of the update and its trailer (`size` objects in all).
    fn finish(mut self, original: &Original<'_>, size: u32) -> Vec<u8> {
        let out = &mut self.out;
        let xref_at = out.len();
        self.offsets.sort_unstable();
        out.extend_from_slice(b"xref\n");
        for (number, offset) in &self.offsets {
            out.extend_from_slice(format!("{number} 1\n{offset:010} 00000 n \n").as_bytes());
        }
        let mut trailer = format!("trailer\n<< /Size {size} /Root {} 0 R", original.root.0);
        if let Some(info) = &original.info {
            trailer.push_str(&format!(" /Info {info}"));
        }
        if let Some(id) = &original.id {
            trailer.push_str(&format!(" /ID {id}"));
        }
        trailer.push_str(&format!(
            " /Prev {} >>\nstartxref\n{xref_at}\n%%EOF\n",
            original.startxref
        ));
        out.extend_from_slice(trailer.as_bytes());
        self.out
    }
}

fn write_object(out: &mut Vec<u8>, reference: ObjRef, dict: &[u8]) {
    out.extend_from_slice(format!("{} {} obj\n", reference.0, reference.1).as_bytes());
    out.extend_from_slice(dict);
    out.extend_from_slice(b"\nendobj\n");
}

/// `dict` (`<< … >>`) with `entry` added before its closing `>>`.
fn with_entry(dict: &[u8], entry: &str) -> Result<Vec<u8>, PadesError> {
    let end = dict
        .iter()
        .rposition(|&b| b == b'>')
        .filter(|&i| i > 0 && dict[i - 1] == b'>')
        .ok_or_else(|| unsupported("an object is not a dictionary"))?;
    let mut out = dict[..end - 1].to_vec();
    out.push(b' ');
    out.extend_from_slice(entry.as_bytes());
    out.push(b' ');
    out.extend_from_slice(&dict[end - 1..]);
    Ok(out)
}

/// An indirect reference: object number and generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ObjRef(u32, u16);

/// The parts of the original file the update needs.
struct Original<'a> {
    pdf: &'a [u8],
    startxref: usize,
    size: u32,
    root: ObjRef,
    info: Option<String>,
    id: Option<String>,
    /// Offsets of in-use objects, by number (the last section's entries win).
    offsets: Vec<Option<usize>>,
}

impl<'a> Original<'a> {
    fn read(pdf: &'a [u8]) -> Result<Self, PadesError> {
        let tail_from = pdf.len().saturating_sub(1024);
        let tail = &pdf[tail_from..];
        let at = find_last(tail, b"startxref").ok_or_else(|| unsupported("no startxref"))?
            + tail_from
            + b"startxref".len();
        let startxref = parse_number(pdf, skip_white(pdf, at))
            .ok_or_else(|| unsupported("startxref is not a number"))?
            .0;
        let mut offsets = Vec::new();
        let mut pos = skip_white(pdf, startxref);
        if !pdf[pos..].starts_with(b"xref") {
            return Err(unsupported(
                "cross-reference streams are not supported, only tables",
            ));
        }
        pos += 4;
        // Subsections: "first count" then count 20-byte entries.
        loop {
            pos = skip_white(pdf, pos);
            if pdf[pos..].starts_with(b"trailer") {
                pos += b"trailer".len();
                break;
            }
            let (first, next) = parse_number(pdf, pos).ok_or_else(|| unsupported("xref"))?;
            let (count, next) =
                parse_number(pdf, skip_white(pdf, next)).ok_or_else(|| unsupported("xref"))?;
            pos = skip_white(pdf, next);
            for i in 0..count {
                let line = pdf
                    .get(pos..pos + 20)
                    .ok_or_else(|| unsupported("a truncated xref entry"))?;
                let number = first + i;
                if offsets.len() <= number {
                    offsets.resize(number + 1, None);
                }
                if line[17] == b'n' {
                    let offset = std::str::from_utf8(&line[..10])
                        .ok()
                        .and_then(|s| s.parse::<usize>().ok())
                        .ok_or_else(|| unsupported("an xref offset"))?;
                    offsets[number] = Some(offset);
                }
                pos += 20;
            }
        }
        let trailer_start = skip_white(pdf, pos);
        let trailer = dictionary_at(pdf, trailer_start)?;
        if entry(trailer, b"Encrypt")?.is_some() {
            return Err(unsupported("the file is encrypted"));
        }
        if entry(trailer, b"Prev")?.is_some() {
            return Err(unsupported("the file was already updated"));
        }
        let value = |key: &[u8]| -> Result<Option<String>, PadesError> {
            Ok(entry(trailer, key)?
                .map(|r| String::from_utf8_lossy(&trailer[r]).trim().to_string()))
        };
        let size = value(b"Size")?
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or_else(|| unsupported("the trailer has no /Size"))?;
        let root = value(b"Root")?
            .as_deref()
            .and_then(parse_ref)
            .ok_or_else(|| unsupported("the trailer has no /Root"))?;
        Ok(Original {
            pdf,
            startxref,
            size,
            root,
            info: value(b"Info")?,
            id: value(b"ID")?,
            offsets,
        })
    }

    /// The dictionary of object `reference` (objects that are dictionaries only).
    fn object(&self, reference: ObjRef) -> Result<&'a [u8], PadesError> {
        let offset = usize::try_from(reference.0)
            .ok()
            .and_then(|n| self.offsets.get(n).copied().flatten())
            .ok_or_else(|| unsupported(format!("object {} is not in use", reference.0)))?;
        let header = format!("{} {} obj", reference.0, reference.1);
        if !self.pdf[offset..].starts_with(header.as_bytes()) {
            return Err(unsupported(format!(
                "object {} is not at its xref offset",
                reference.0
            )));
        }
        dictionary_at(self.pdf, skip_white(self.pdf, offset + header.len()))
    }

    /// The first page: the first leaf of the page tree.
    fn first_page(&self, catalog: &[u8]) -> Result<ObjRef, PadesError> {
        let mut node = entry(catalog, b"Pages")?
            .and_then(|r| parse_ref(&String::from_utf8_lossy(&catalog[r])))
            .ok_or_else(|| unsupported("the catalog has no /Pages"))?;
        for _ in 0..32 {
            let dict = self.object(node)?;
            let kind = entry(dict, b"Type")?.map(|r| dict[r].to_vec());
            if kind.as_deref() == Some(b"/Page") {
                return Ok(node);
            }
            let kids =
                entry(dict, b"Kids")?.ok_or_else(|| unsupported("a page node without /Kids"))?;
            let kids = String::from_utf8_lossy(&dict[kids]).to_string();
            node = parse_ref(kids.trim_start_matches('[').trim())
                .ok_or_else(|| unsupported("an empty page tree"))?;
        }
        Err(unsupported("the page tree is too deep"))
    }
}

/// The `<< … >>` starting at `at`.
fn dictionary_at(pdf: &[u8], at: usize) -> Result<&[u8], PadesError> {
    if !pdf[at..].starts_with(b"<<") {
        return Err(unsupported("a dictionary was expected"));
    }
    let end = value_end(pdf, at).ok_or_else(|| unsupported("an unterminated dictionary"))?;
    Ok(&pdf[at..end])
}

/// The range of the value of `/key` at the top level of `dict` (`<< … >>`).
fn entry(dict: &[u8], key: &[u8]) -> Result<Option<std::ops::Range<usize>>, PadesError> {
    let mut pos = 2;
    loop {
        pos = skip_white(dict, pos);
        if pos >= dict.len() || dict[pos..].starts_with(b">>") {
            return Ok(None);
        }
        if dict[pos] != b'/' {
            return Err(unsupported("a dictionary key was expected"));
        }
        let name_end = name_end(dict, pos + 1);
        let name = &dict[pos + 1..name_end];
        let start = skip_white(dict, name_end);
        let end = value_end(dict, start).ok_or_else(|| unsupported("a malformed value"))?;
        // An indirect reference "n g R" is three tokens.
        let end = reference_end(dict, start, end).unwrap_or(end);
        if name == key {
            return Ok(Some(start..end));
        }
        pos = end;
    }
}

/// After "n" at `start` ending at `end`: the end of "n g R" if that is what follows.
fn reference_end(dict: &[u8], start: usize, end: usize) -> Option<usize> {
    if !dict[start].is_ascii_digit() {
        return None;
    }
    let g = skip_white(dict, end);
    let g_end = value_end(dict, g)?;
    if g_end == g || !dict[g..g_end].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let r = skip_white(dict, g_end);
    (dict.get(r) == Some(&b'R')).then_some(r + 1)
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn name_end(s: &[u8], mut pos: usize) -> usize {
    while pos < s.len() && !s[pos].is_ascii_whitespace() && !is_delimiter(s[pos]) {
        pos += 1;
    }
    pos
}

/// The end of the value starting at `at`: a dictionary, array, string, name or bare token.
fn value_end(s: &[u8], at: usize) -> Option<usize> {
    let first = *s.get(at)?;
    match first {
        b'<' if s.get(at + 1) == Some(&b'<') => {
            let mut pos = at + 2;
            loop {
                pos = skip_white(s, pos);
                if s.get(pos..pos + 2)? == b">>" {
                    return Some(pos + 2);
                }
                pos = value_end(s, pos)?;
            }
        }
        b'[' => {
            let mut pos = at + 1;
            loop {
                pos = skip_white(s, pos);
                if *s.get(pos)? == b']' {
                    return Some(pos + 1);
                }
                pos = value_end(s, pos)?;
            }
        }
        b'<' => s[at..].iter().position(|&b| b == b'>').map(|i| at + i + 1),
        b'(' => {
            let (mut depth, mut pos) = (0usize, at);
            while pos < s.len() {
                match s[pos] {
                    b'\\' => pos += 1,
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(pos + 1);
                        }
                    }
                    _ => {}
                }
                pos += 1;
            }
            None
        }
        b'/' => Some(name_end(s, at + 1)),
        _ => {
            let end = name_end(s, at);
            (end > at).then_some(end)
        }
    }
}

fn skip_white(s: &[u8], mut pos: usize) -> usize {
    while pos < s.len() {
        if s[pos].is_ascii_whitespace() || s[pos] == 0 {
            pos += 1;
        } else if s[pos] == b'%' {
            while pos < s.len() && s[pos] != b'\n' && s[pos] != b'\r' {
                pos += 1;
            }
        } else {
            break;
        }
    }
    pos
}

fn parse_number(s: &[u8], at: usize) -> Option<(usize, usize)> {
    let end = at
        + s.get(at..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
    let n = std::str::from_utf8(&s[at..end]).ok()?.parse().ok()?;
    Some((n, end))
}

fn parse_ref(text: &str) -> Option<ObjRef> {
    let mut parts = text.split_ascii_whitespace();
    let number = parts.next()?.parse().ok()?;
    let generation = parts.next()?.parse().ok()?;
    (parts.next()? == "R").then_some(ObjRef(number, generation))
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// `(D:YYYYMMDDHHmmSSZ)` in UTC (ISO 32000-1 §7.9.4).
fn pdf_date(at: OffsetDateTime) -> String {
    let t = at.to_offset(time::UtcOffset::UTC);
    format!(
        "(D:{:04}{:02}{:02}{:02}{:02}{:02}Z)",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A text string (§7.9.2.2): UTF-16BE with its byte order mark, as a hex string.
fn text_string(text: &str) -> String {
    let mut hex = String::from("<FEFF");
    for unit in text.encode_utf16() {
        hex.push_str(&format!("{unit:04X}"));
    }
    hex.push('>');
    hex
}

/// A signature found in a PDF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSignature {
    /// The `/ByteRange`: offset and length of the two signed parts.
    pub byte_range: [usize; 4],
    /// The CMS `SignedData` (DER, without the zero padding).
    pub cms: Vec<u8>,
}

/// Each signature of a PDF this module signed, in order of appearance: what a verifier reads
/// back.
pub fn signatures(pdf: &[u8]) -> Result<Vec<FoundSignature>, PadesError> {
    let mut found = Vec::new();
    let mut from = 0;
    let marker = b"/SubFilter /ETSI.CAdES.detached /ByteRange ";
    while let Some(i) = pdf[from..].windows(marker.len()).position(|w| w == marker) {
        let at = from + i + marker.len();
        let end = value_end(pdf, at).ok_or_else(|| unsupported("a malformed /ByteRange"))?;
        let numbers: Vec<usize> = String::from_utf8_lossy(&pdf[at + 1..end - 1])
            .split_ascii_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        let [a, b, c, d] = numbers[..] else {
            return Err(unsupported("a /ByteRange of other than four numbers"));
        };
        let contents = pdf
            .get(b..c)
            .filter(|h| h.first() == Some(&b'<') && h.last() == Some(&b'>'))
            .ok_or_else(|| unsupported("the /ByteRange does not frame the /Contents"))?;
        let hex = &contents[1..contents.len() - 1];
        let der = hex::decode(hex).map_err(|_| unsupported("the /Contents is not hex"))?;
        // The DER is padded with zeros; its own length says where it ends.
        let len = crate::core::asn1::Der::new(&der)
            .read()
            .map(|t| t.raw.len())
            .map_err(|_| unsupported("the /Contents is not DER"))?;
        found.push(FoundSignature {
            byte_range: [a, b, c, d],
            cms: der[..len].to_vec(),
        });
        from = end;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-page PDF laid out as pdf-writer lays it out.
    fn sample() -> Vec<u8> {
        let mut pdf = pdf_writer::Pdf::new();
        let catalog = pdf_writer::Ref::new(1);
        let tree = pdf_writer::Ref::new(2);
        let pages = [pdf_writer::Ref::new(3), pdf_writer::Ref::new(4)];
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree).kids(pages).count(2);
        for page in pages {
            pdf.page(page)
                .parent(tree)
                .media_box(pdf_writer::Rect::new(0.0, 0.0, 595.0, 842.0));
        }
        pdf.finish()
    }

    fn field() -> SignatureField<'static> {
        SignatureField {
            signer: "recommande",
            reason: "Preuve de dépôt",
            contact: "contact@example.org",
            at: time::macros::datetime!(2026-12-02 10:00:00 UTC),
            rect: Some([40.0, 40.0, 300.0, 90.0]),
        }
    }

    #[test]
    fn the_update_keeps_the_original_and_frames_the_contents() {
        let original = sample();
        let prepared = prepare(&original, &field()).expect("prepare");
        let digest = prepared.digest();
        let signed = prepared
            .finish(&[0x30, 0x03, 0x02, 0x01, 0x05])
            .expect("finish");
        assert!(signed.starts_with(&original), "the original bytes are kept");
        let sigs = signatures(&signed).expect("read back");
        let [
            FoundSignature {
                byte_range: range,
                cms: der,
            },
        ] = sigs.as_slice()
        else {
            panic!("one signature: {sigs:?}");
        };
        assert_eq!(der, &[0x30, 0x03, 0x02, 0x01, 0x05]);
        assert_eq!(range[0], 0);
        assert_eq!(
            range[2] + range[3],
            signed.len(),
            "the ranges reach the end"
        );
        let mut h = Sha256::new();
        h.update(&signed[..range[1]]);
        h.update(&signed[range[2]..]);
        assert_eq!(<[u8; 32]>::from(h.finalize()), digest);
        let text = String::from_utf8_lossy(&signed[original.len()..]);
        assert!(
            text.contains("/AcroForm << /Fields [6 0 R] /SigFlags 3 >>"),
            "{text}"
        );
        assert!(text.contains("/Annots [6 0 R]"), "{text}");
        assert!(text.contains("/Prev "), "{text}");
        assert!(text.contains("/Size 8"), "{text}");
    }

    #[test]
    fn what_cannot_be_signed_is_refused() {
        let once = prepare(&sample(), &field())
            .expect("prepare")
            .finish(&[0x05, 0x00])
            .expect("finish");
        assert!(matches!(
            prepare(&once, &field()),
            Err(PadesError::Unsupported(_))
        ));
        assert!(prepare(b"%PDF-1.7\nnot a pdf", &field()).is_err());
        let big = vec![0u8; CONTENTS_CAPACITY + 1];
        let prepared = prepare(&sample(), &field()).expect("prepare");
        assert_eq!(prepared.finish(&big), Err(PadesError::TooLarge(big.len())));
    }
}
