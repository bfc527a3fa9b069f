//! Is an upload a PDF? A structural check made while the bytes stream in, in bounded memory,
//! without a PDF library: enough of the file structure of ISO 32000-1:2008 §7.5 (ISO
//! 32000-2:2020 §7.5) that a file merely starting with `%PDF-` is not taken for one.
//!
//! - §7.5.2 header: `%PDF-1.0` … `%PDF-1.7` or `%PDF-2.0` at offset 0;
//! - §7.5.5 trailer: the file ends with `startxref`, a byte offset and `%%EOF` (within the
//!   last 1024 bytes, as readers look for it; whitespace after it is ignored);
//! - that offset is the `xref` keyword of a cross-reference table (§7.5.4) followed by a
//!   `trailer` dictionary naming `/Root`, or the object header `N G obj` of a
//!   cross-reference stream (§7.5.8, a dictionary with `/Type /XRef` and `/Root`).
//!   Incremental updates (§7.5.6) and linearized files (Annex F), whose last `startxref`
//!   points to the first-page section near the start, pass: every section's position is
//!   noted as the bytes go by, and the final `startxref` is resolved at the end;
//! - no HTML in the first 1024 bytes (`<html`, `<script`, …): browsers sniff the first 512
//!   bytes of what they are served (WHATWG MIME Sniffing §7.1), so such a polyglot could run
//!   as a page wherever a copy ends up served without our `nosniff` header.
//!
//! The lexer follows §7.2 (white-space, delimiters, comments): tokens are runs of regular
//! characters, kept up to [`TOKEN_MAX`] bytes; dictionaries are read from at most
//! [`DICT_WINDOW`] bytes; at most [`MAX_SECTIONS`] sections of each kind are noted. Memory
//! stays a few hundred KB whatever the input, and any input gives an answer, never a panic.

/// Leading bytes checked for HTML markup (and kept for the header).
pub const HEAD_LEN: usize = 1024;
/// `%%EOF` must start within this many bytes of the end (trailing white-space aside).
const EOF_WINDOW: usize = 1024;
/// Bytes kept from the end of the file for reading `startxref … %%EOF`.
const TAIL_LEN: usize = 2 * EOF_WINDOW;
/// Longest token kept: keywords and object numbers are short.
const TOKEN_MAX: usize = 32;
/// Bytes of a trailer or object dictionary read for `/Root` and `/Type /XRef`.
const DICT_WINDOW: usize = 4096;
/// Cross-reference sections (and trailers) noted at most, of each kind.
pub const MAX_SECTIONS: usize = 4096;

/// HTML a browser would render if it sniffed the file (compared lower-cased).
const HTML_MARKERS: [&[u8]; 10] = [
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<body",
    b"<script",
    b"<iframe",
    b"<svg",
    b"<object",
    b"<embed",
    b"<meta",
];

/// Why an upload that starts like a PDF is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotPdf {
    /// No `%PDF-` at offset 0 (the file is something else).
    #[error("not a PDF: no %PDF- header at its start{}", .0.map(|k| format!(" (it starts with {k})")).unwrap_or_default())]
    NoHeader(Option<&'static str>),
    /// `%PDF-` followed by no known version.
    #[error("not a PDF: the header names no PDF version 1.0 to 1.7 or 2.0")]
    BadVersion,
    /// HTML markup near the start: a polyglot a browser could render.
    #[error(
        "not a PDF: HTML markup (`{0}`) in its first 1024 bytes, which a browser could run as a page"
    )]
    Html(&'static str),
    /// No `%%EOF` marker near the end (a truncated file).
    #[error("not a PDF: no %%EOF marker at its end (truncated?)")]
    NoEof,
    /// No `startxref <offset>` before the final `%%EOF`.
    #[error("not a PDF: no startxref offset before its final %%EOF")]
    NoStartxref,
    /// The offset lies outside the file.
    #[error("not a PDF: startxref points past the end of the file")]
    StartxrefOutside,
    /// The offset is not a cross-reference section.
    #[error("not a PDF: no cross-reference table or stream where startxref points")]
    NoXref,
    /// A cross-reference table without a trailer after it.
    #[error("not a PDF: no trailer dictionary after its cross-reference table")]
    NoTrailer,
    /// The trailer (or cross-reference stream) names no document catalog.
    #[error("not a PDF: its trailer names no /Root catalog")]
    NoRoot,
    /// More sections than any real file has.
    #[error("not a PDF: more than {MAX_SECTIONS} cross-reference sections")]
    TooManySections,
}

/// The executable format whose magic number starts `head`, if any (ELF, PE, Mach-O).
pub fn executable_kind(head: &[u8]) -> Option<&'static str> {
    const MACH_O: [[u8; 4]; 5] = [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xcf, 0xfa, 0xed, 0xfe],
        [0xca, 0xfe, 0xba, 0xbe],
    ];
    if head.starts_with(b"\x7fELF") {
        Some("an ELF executable header")
    } else if head.starts_with(b"MZ") {
        Some("a PE (MZ) executable header")
    } else if MACH_O.iter().any(|m| head.starts_with(m)) {
        Some("a Mach-O executable header")
    } else {
        None
    }
}

/// Checks a whole document held in memory (the composer's own PDFs, tests).
pub fn check(bytes: &[u8]) -> Result<(), NotPdf> {
    let mut checker = PdfCheck::default();
    checker.feed(bytes);
    checker.finish()
}

/// What a capture is reading.
#[derive(Debug, Clone, Copy)]
enum CaptureKind {
    /// The dictionary after `trailer` at this offset.
    Trailer { start: u64 },
    /// The dictionary of the object whose header starts at `start` (white-space from `gap`).
    Object { gap: u64, start: u64 },
}

#[derive(Debug)]
struct Capture {
    kind: CaptureKind,
    /// Offset of `bytes[0]`.
    from: u64,
    bytes: Vec<u8>,
}

/// A finished token: where it starts, where the white-space before it starts, whether it is
/// an unsigned integer.
#[derive(Debug, Clone, Copy, Default)]
struct Token {
    gap: u64,
    start: u64,
    integer: bool,
}

/// The streaming checker: [`PdfCheck::feed`] every chunk in order, then
/// [`PdfCheck::finish`].
#[derive(Debug, Default)]
pub struct PdfCheck {
    /// Bytes fed so far.
    offset: u64,
    head: Vec<u8>,
    /// The end of the file without its trailing white-space (at most [`TAIL_LEN`] bytes)…
    tail: Vec<u8>,
    /// …and that white-space (its last [`TAIL_LEN`] bytes), which is part of the tail as soon
    /// as a byte of another kind follows.
    trailing_ws: Vec<u8>,
    trailing_ws_len: u64,
    in_comment: bool,
    token: Vec<u8>,
    token_start: u64,
    token_long: bool,
    /// Where the white-space and comments before the current token began.
    gap: u64,
    previous: [Option<Token>; 2],
    /// `(gap, start)` of each `xref` keyword.
    xrefs: Vec<(u64, u64)>,
    /// `(start, names /Root)` of each `trailer`.
    trailers: Vec<(u64, bool)>,
    /// `(gap, start, names /Root)` of each cross-reference stream object.
    xref_streams: Vec<(u64, u64, bool)>,
    capture: Option<Capture>,
    overflow: bool,
}

/// PDF white-space (ISO 32000-1 §7.2.2, Table 1).
fn is_white(b: u8) -> bool {
    matches!(b, 0 | 9 | 10 | 12 | 13 | 32)
}

/// PDF delimiters (§7.2.2, Table 2).
fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn is_regular(b: u8) -> bool {
    !is_white(b) && !is_delimiter(b)
}

/// Whether `dict` holds the name `/<name>` (followed by a non-regular byte or the end).
fn has_name(dict: &[u8], name: &[u8]) -> bool {
    name_ends(dict, name).next().is_some()
}

/// Offsets just past each occurrence of the name `/<name>` in `dict`.
fn name_ends<'a>(dict: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let len = name.len() + 1;
    (0..dict.len().saturating_sub(len - 1)).filter_map(move |i| {
        let hit = dict[i] == b'/'
            && dict[i + 1..i + len] == *name
            && dict.get(i + len).is_none_or(|b| !is_regular(*b));
        hit.then_some(i + len)
    })
}

/// Whether an object dictionary is a cross-reference stream's: `/Type /XRef`.
fn is_xref_stream(dict: &[u8]) -> bool {
    name_ends(dict, b"Type").any(|end| {
        let rest = &dict[end..];
        let skip = rest.iter().take_while(|b| is_white(**b)).count();
        has_name_at(&rest[skip..], b"XRef")
    })
}

fn has_name_at(bytes: &[u8], name: &[u8]) -> bool {
    bytes.first() == Some(&b'/')
        && bytes.get(1..=name.len()) == Some(name)
        && bytes.get(name.len() + 1).is_none_or(|b| !is_regular(*b))
}

impl PdfCheck {
    /// A checker that has seen nothing yet.
    pub fn new() -> Self {
        PdfCheck::default()
    }

    /// Reads the next bytes of the file.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.head.len() < HEAD_LEN {
            let take = (HEAD_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.feed_tail(chunk);
        for &b in chunk {
            self.byte(b);
        }
    }

    fn feed_tail(&mut self, chunk: &[u8]) {
        match chunk.iter().rposition(|b| !is_white(*b)) {
            None => self.push_trailing_ws(chunk),
            Some(last) => {
                // The white-space seen so far is inside the file after all.
                if self.trailing_ws_len > self.trailing_ws.len() as u64 {
                    // Part of it was dropped: what came before is too far from the end.
                    self.tail.clear();
                }
                let ws = std::mem::take(&mut self.trailing_ws);
                self.trailing_ws_len = 0;
                self.tail.extend_from_slice(&ws);
                self.tail.extend_from_slice(&chunk[..=last]);
                if self.tail.len() > TAIL_LEN {
                    let cut = self.tail.len() - TAIL_LEN;
                    self.tail.drain(..cut);
                }
                self.push_trailing_ws(&chunk[last + 1..]);
            }
        }
    }

    fn push_trailing_ws(&mut self, ws: &[u8]) {
        self.trailing_ws_len += ws.len() as u64;
        self.trailing_ws.extend_from_slice(ws);
        if self.trailing_ws.len() > TAIL_LEN {
            let cut = self.trailing_ws.len() - TAIL_LEN;
            self.trailing_ws.drain(..cut);
        }
    }

    fn byte(&mut self, b: u8) {
        let pos = self.offset;
        self.offset += 1;
        if self.in_comment {
            // §7.2.4: a comment runs to the end of the line and counts as white-space.
            if b == b'\r' || b == b'\n' {
                self.in_comment = false;
            }
        } else if is_white(b) {
            self.end_token(pos);
        } else if is_delimiter(b) {
            self.end_token(pos);
            if b == b'%' {
                self.in_comment = true;
            } else {
                self.gap = pos + 1;
            }
        } else {
            if self.token.is_empty() && !self.token_long {
                self.token_start = pos;
            }
            if self.token.len() < TOKEN_MAX {
                self.token.push(b);
            } else {
                self.token_long = true;
            }
        }
        if let Some(capture) = self.capture.as_mut() {
            capture.bytes.push(b);
            if capture.bytes.len() >= DICT_WINDOW {
                self.end_capture(None);
            }
        }
    }

    /// The current token, if any, ends before `pos`.
    fn end_token(&mut self, pos: u64) {
        if self.token.is_empty() && !self.token_long {
            return;
        }
        let token = Token {
            gap: self.gap,
            start: self.token_start,
            integer: !self.token_long
                && self.token.len() <= 10
                && self.token.iter().all(u8::is_ascii_digit),
        };
        if !self.token_long {
            let word = std::mem::take(&mut self.token);
            self.keyword(&word, token);
        }
        self.token.clear();
        self.token_long = false;
        self.previous = [self.previous[1], Some(token)];
        self.gap = pos;
    }

    fn keyword(&mut self, word: &[u8], token: Token) {
        match word {
            b"xref" => {
                self.end_capture(Some(token.start));
                if self.xrefs.len() < MAX_SECTIONS {
                    self.xrefs.push((token.gap, token.start));
                } else {
                    self.overflow = true;
                }
            }
            b"trailer" => {
                self.end_capture(Some(token.start));
                self.start_capture(CaptureKind::Trailer { start: token.start });
            }
            b"startxref" => self.end_capture(Some(token.start)),
            b"stream" | b"endobj" => {
                if matches!(
                    self.capture,
                    Some(Capture {
                        kind: CaptureKind::Object { .. },
                        ..
                    })
                ) {
                    self.end_capture(Some(token.start));
                }
            }
            b"obj" => {
                if let [Some(number), Some(generation)] = self.previous
                    && number.integer
                    && generation.integer
                {
                    self.end_capture(Some(number.start));
                    self.start_capture(CaptureKind::Object {
                        gap: number.gap,
                        start: number.start,
                    });
                }
            }
            _ => {}
        }
    }

    fn start_capture(&mut self, kind: CaptureKind) {
        self.capture = Some(Capture {
            kind,
            // The byte ending the keyword is pushed right after this call.
            from: self.offset.saturating_sub(1),
            bytes: Vec::new(),
        });
    }

    /// Reads the dictionary captured so far, cut at offset `cut` if given.
    fn end_capture(&mut self, cut: Option<u64>) {
        let Some(mut capture) = self.capture.take() else {
            return;
        };
        if let Some(cut) = cut {
            let keep = usize::try_from(cut.saturating_sub(capture.from)).unwrap_or(usize::MAX);
            capture.bytes.truncate(keep);
        }
        let dict = capture.bytes.as_slice();
        match capture.kind {
            CaptureKind::Trailer { start } => {
                if self.trailers.len() < MAX_SECTIONS {
                    self.trailers.push((start, has_name(dict, b"Root")));
                } else {
                    self.overflow = true;
                }
            }
            CaptureKind::Object { gap, start } => {
                if is_xref_stream(dict) {
                    if self.xref_streams.len() < MAX_SECTIONS {
                        self.xref_streams
                            .push((gap, start, has_name(dict, b"Root")));
                    } else {
                        self.overflow = true;
                    }
                }
            }
        }
    }

    /// The verdict, once every byte was fed.
    pub fn finish(mut self) -> Result<(), NotPdf> {
        let head = std::mem::take(&mut self.head);
        let Some(version) = head.strip_prefix(b"%PDF-") else {
            return Err(NotPdf::NoHeader(executable_kind(&head)));
        };
        let known = [
            b"1.0", b"1.1", b"1.2", b"1.3", b"1.4", b"1.5", b"1.6", b"1.7", b"2.0",
        ];
        let version_ok = known
            .iter()
            .any(|v| version.starts_with(*v) && version.get(3).is_none_or(|b| !b.is_ascii_digit()));
        if !version_ok {
            return Err(NotPdf::BadVersion);
        }
        let lower = head.to_ascii_lowercase();
        if let Some(marker) = HTML_MARKERS
            .iter()
            .find(|m| lower.windows(m.len()).any(|w| w == **m))
        {
            return Err(NotPdf::Html(std::str::from_utf8(marker).unwrap_or("<html")));
        }
        let end = self.offset;
        self.end_token(end);
        self.end_capture(None);
        if self.overflow {
            return Err(NotPdf::TooManySections);
        }
        let target = self.startxref()?;
        if target >= end {
            return Err(NotPdf::StartxrefOutside);
        }
        self.resolve(target)
    }

    /// The offset given by the last `startxref` before the final `%%EOF`.
    fn startxref(&self) -> Result<u64, NotPdf> {
        let tail = self.tail.as_slice();
        let window_start = tail.len().saturating_sub(EOF_WINDOW);
        let eof = tail
            .windows(5)
            .rposition(|w| w == b"%%EOF")
            .filter(|at| *at >= window_start)
            .ok_or(NotPdf::NoEof)?;
        let before = &tail[..eof];
        let keyword = before
            .windows(9)
            .rposition(|w| w == b"startxref")
            .ok_or(NotPdf::NoStartxref)?;
        let between = &before[keyword + 9..];
        let text = std::str::from_utf8(between).map_err(|_| NotPdf::NoStartxref)?;
        let digits = text.trim_matches(|c: char| c.is_ascii() && is_white(c as u8));
        if digits.is_empty()
            || digits.len() > 20
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || !between.first().is_some_and(|b| is_white(*b))
        {
            return Err(NotPdf::NoStartxref);
        }
        digits.parse::<u64>().map_err(|_| NotPdf::StartxrefOutside)
    }

    /// Whether `target` is a cross-reference section whose trailer names `/Root`.
    fn resolve(&self, target: u64) -> Result<(), NotPdf> {
        // Sections are noted in file order; the one at `target` may be preceded by
        // white-space (§7.5.5 points at the keyword; writers differ on the line end).
        let at = self.xrefs.partition_point(|(_, start)| *start < target);
        if let Some((gap, start)) = self.xrefs.get(at)
            && *gap <= target
        {
            let next = self.trailers.partition_point(|(t, _)| t <= start);
            let next_xref = self.xrefs.get(at + 1).map(|(_, s)| *s);
            return match self.trailers.get(next) {
                Some((t, _)) if next_xref.is_some_and(|x| x < *t) => Err(NotPdf::NoTrailer),
                Some((_, true)) => Ok(()),
                Some((_, false)) => Err(NotPdf::NoRoot),
                None => Err(NotPdf::NoTrailer),
            };
        }
        let at = self
            .xref_streams
            .partition_point(|(_, start, _)| *start < target);
        match self.xref_streams.get(at) {
            Some((gap, _, root)) if *gap <= target => {
                if *root {
                    Ok(())
                } else {
                    Err(NotPdf::NoRoot)
                }
            }
            _ => Err(NotPdf::NoXref),
        }
    }
}

/// A minimal well-formed one-page PDF showing `text` (for benches and tests): header,
/// catalog, page tree, page, content stream, font, cross-reference table, trailer.
pub fn minimal_pdf(text: &str) -> Vec<u8> {
    let escaped: String = text
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .flat_map(|c| match c {
            '(' | ')' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let content = format!("BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, obj) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{obj}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` in chunks of `size`, so tokens and dictionaries straddle chunk ends.
    fn check_in_chunks(bytes: &[u8], size: usize) -> Result<(), NotPdf> {
        let mut checker = PdfCheck::new();
        for chunk in bytes.chunks(size) {
            checker.feed(chunk);
        }
        checker.finish()
    }

    fn all_ways(bytes: &[u8]) -> Result<(), NotPdf> {
        let whole = check(bytes);
        for size in [1, 2, 3, 7, 64, 1000] {
            assert_eq!(check_in_chunks(bytes, size), whole, "chunks of {size}");
        }
        whole
    }

    fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = bytes
            .windows(from.len())
            .position(|w| w == from)
            .expect("present");
        let mut out = bytes[..at].to_vec();
        out.extend_from_slice(to);
        out.extend_from_slice(&bytes[at + from.len()..]);
        out
    }

    #[test]
    fn a_minimal_pdf_passes_whole_and_in_any_chunking() {
        assert_eq!(all_ways(&minimal_pdf("Relance (1)")), Ok(()));
    }

    #[test]
    fn trailing_white_space_after_eof_is_ignored_but_other_bytes_are_not() {
        let mut padded = minimal_pdf("x");
        padded.resize(padded.len() + 50_000, b' ');
        assert_eq!(all_ways(&padded), Ok(()));
        let mut junk = minimal_pdf("x");
        junk.extend(std::iter::repeat_n(b'A', 2000));
        assert_eq!(all_ways(&junk), Err(NotPdf::NoEof));
    }

    #[test]
    fn an_incremental_update_passes_and_its_last_trailer_must_name_the_root() {
        let base = minimal_pdf("v1");
        let first_xref = base.windows(5).position(|w| w == b"xref\n").expect("xref");
        let update = |root: &str| {
            let mut pdf = base.clone();
            let obj = pdf.len();
            pdf.extend_from_slice(b"6 0 obj\n<< /Producer (update) >>\nendobj\n");
            let xref = pdf.len();
            pdf.extend_from_slice(
                format!(
                    "xref\n6 1\n{obj:010} 00000 n \ntrailer\n<< /Size 7 {root}/Prev {first_xref} >>\nstartxref\n{xref}\n%%EOF\n"
                )
                .as_bytes(),
            );
            pdf
        };
        assert_eq!(all_ways(&update("/Root 1 0 R ")), Ok(()));
        assert_eq!(all_ways(&update("")), Err(NotPdf::NoRoot));
    }

    #[test]
    fn a_cross_reference_stream_passes_when_it_names_the_root() {
        let stream = |dict: &str| {
            let mut pdf = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n".to_vec();
            let xref = pdf.len();
            pdf.extend_from_slice(
                format!("3 0 obj\n<< {dict} /Length 4 >>\nstream\n\x00\x01/Root\nendstream\nendobj\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
            );
            pdf
        };
        assert_eq!(
            all_ways(&stream("/Type /XRef /Size 4 /W [1 2 1] /Root 1 0 R")),
            Ok(())
        );
        assert_eq!(
            all_ways(&stream("/Type/XRef/Size 4/W[1 2 1]/Root 1 0 R")),
            Ok(())
        );
        // /Root only inside the stream data does not count.
        assert_eq!(
            all_ways(&stream("/Type /XRef /Size 4 /W [1 2 1]")),
            Err(NotPdf::NoRoot)
        );
        assert_eq!(
            all_ways(&stream("/Type /XRefs /Size 4 /Root 1 0 R")),
            Err(NotPdf::NoXref)
        );
    }

    #[test]
    fn hostile_files_are_refused_with_their_reason() {
        let good = minimal_pdf("x");
        assert_eq!(
            all_ways(b"%PDF-1.4 fake"),
            Err(NotPdf::NoEof),
            "a header alone"
        );
        assert_eq!(
            all_ways(&good[..good.len() - 8]),
            Err(NotPdf::NoEof),
            "truncated"
        );
        assert_eq!(
            all_ways(&good[..good.len() / 2]),
            Err(NotPdf::NoEof),
            "half of it"
        );
        let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
        elf.extend_from_slice(&good);
        assert_eq!(
            all_ways(&elf),
            Err(NotPdf::NoHeader(Some("an ELF executable header")))
        );
        let mut pe = b"MZ\x90\0".to_vec();
        pe.extend_from_slice(&good);
        assert_eq!(
            all_ways(&pe),
            Err(NotPdf::NoHeader(Some("a PE (MZ) executable header")))
        );
        assert_eq!(all_ways(b"GIF89a"), Err(NotPdf::NoHeader(None)));
        let html = replace(
            &good,
            b"%PDF-1.7\n",
            b"%PDF-1.7\n%<HTML><Script>alert(1)</script>\n",
        );
        assert_eq!(all_ways(&html), Err(NotPdf::Html("<html")));
        let doctype = replace(&good, b"%PDF-1.7\n", b"%PDF-1.7\n% <!DOCTYPE html>\n");
        assert_eq!(all_ways(&doctype), Err(NotPdf::Html("<!doctype html")));
        let nowhere = replace(&good, b"startxref\n", b"startxref\n1");
        assert!(
            matches!(
                all_ways(&nowhere),
                Err(NotPdf::StartxrefOutside | NotPdf::NoXref)
            ),
            "{:?}",
            check(&nowhere)
        );
        let far = replace(&good, b"startxref\n", b"startxref\n99999999");
        assert_eq!(all_ways(&far), Err(NotPdf::StartxrefOutside));
        let into_an_object = {
            let sx = good
                .windows(9)
                .rposition(|w| w == b"startxref")
                .expect("sx");
            let mut pdf = good[..sx].to_vec();
            pdf.extend_from_slice(b"startxref\n40\n%%EOF\n");
            pdf
        };
        assert_eq!(all_ways(&into_an_object), Err(NotPdf::NoXref));
        let no_trailer_root = replace(&good, b"/Root 1 0 R", b"/Info 1 0 R");
        assert_eq!(all_ways(&no_trailer_root), Err(NotPdf::NoRoot));
        let rooted_elsewhere = replace(&good, b"/Root 1 0 R", b"/Rooted 1 0 R");
        assert_eq!(all_ways(&rooted_elsewhere), Err(NotPdf::NoRoot));
        let no_startxref = replace(&good, b"startxref", b"startxrex");
        assert_eq!(all_ways(&no_startxref), Err(NotPdf::NoStartxref));
        let version = replace(&good, b"%PDF-1.7", b"%PDF-3.1");
        assert_eq!(all_ways(&version), Err(NotPdf::BadVersion));
        let version = replace(&good, b"%PDF-1.7", b"%PDF-1.71");
        assert_eq!(all_ways(&version), Err(NotPdf::BadVersion));
    }

    #[test]
    fn arbitrary_bytes_get_an_answer_in_bounded_memory() {
        // A deterministic pseudo-random walk over PDF-ish bytes: never a panic.
        let alphabet: &[u8] = b"%PDF-1.7 \n\r<>/[]()xref trailer startxref obj 0123456789 /Root /Type /XRef %%EOF stream endobj";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200 {
            let mut bytes = b"%PDF-1.7\n".to_vec();
            for _ in 0..(round * 37 % 3000) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let _ = all_ways(&bytes);
        }
        let mut many = b"%PDF-1.7\n".to_vec();
        for _ in 0..=MAX_SECTIONS {
            many.extend_from_slice(b"xref\n");
        }
        many.extend_from_slice(b"trailer <</Root 1 0 R>>\nstartxref\n9\n%%EOF\n");
        assert_eq!(check(&many), Err(NotPdf::TooManySections));
    }
}
