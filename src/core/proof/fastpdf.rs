//! A fast PDF/A-3b writer for the documents the service prints by the thousand (composed
//! letters): it draws the same [`Op`] list as the krilla renderer of [`super::layout`], with
//! `pdf-writer` directly and with everything that does not depend on the document prepared
//! once per process.
//!
//! # What is prepared once
//!
//! The two faces letters use, DejaVu Sans and DejaVu Sans Bold, are subset once to a fixed
//! character set ([`SUBSET`]: printable ASCII, Latin-1, Latin Extended-A, the Romanian
//! comma-below letters, and the punctuation of French typography — ’ ‘ “ ” « » … – — • € and
//! the no-break spaces U+00A0, U+202F — plus a few signs such as → ≤ ≥ №). For each face the
//! subset TrueType program (the FontFile2 stream, deflated at the best level), the glyph
//! widths (`/W`), the ToUnicode CMap and the font dictionaries are serialised once into a
//! [`Chunk`] of objects numbered from 1, together with the CalRGB colour space. A document
//! copies that chunk, then writes only what is its own: the page content streams (deflated
//! at the fastest level), the page tree, the catalog, the document information and XMP
//! metadata, the attached files and the cross-reference table.
//!
//! Characters map one to one to glyphs (no shaping: no kerning, no ligatures), which is how
//! [`Face::width`] measures them, so line breaks are those of the krilla renderer. A
//! document with a character outside the subset, another face (monospace), QR codes or links
//! is not handled here: [`supports`] says so and [`super::layout::Layout::render_fast`] then
//! renders it with krilla, so no character is ever drawn as `.notdef` and the choice is a
//! deterministic function of the text.
//!
//! # PDF/A-3b (ISO 19005-3) in substance
//!
//! - Fonts embedded: Type0 fonts with a CIDFontType2 descendant, `Identity-H` encoding,
//!   `CIDToGIDMap /Identity`, a FontDescriptor with the FontFile2 subset (tagged `XXXXXX+`
//!   per ISO 32000-1 §9.6.4), widths taken from the font's `hmtx`, and a ToUnicode CMap so
//!   the text extracts (§6.2.11.7). No CIDSet: optional in PDF/A-2 and -3.
//! - Colour device-independent (§6.2.4.3): every fill is in a CalRGB space with the sRGB
//!   primaries and D65 white point (ISO 32000-1 §8.6.5.3), set before anything is painted, so
//!   no output intent is needed and no ICC profile is embedded.
//! - Metadata (§6.6): an uncompressed XMP stream with `pdfaid:part` 3 and `pdfaid:conformance`
//!   B, and `dc:title`, `dc:creator`, `dc:description`, `xmp:CreatorTool`, `pdf:Producer`,
//!   `xmp:CreateDate` equal to the Info dictionary's Title, Author, Subject, Creator,
//!   Producer and CreationDate.
//! - Associated files (§6.8): each attachment is an embedded file stream with its MIME
//!   `/Subtype` and `/Params` (`/ModDate`, `/Size`), a file specification with `/F`, `/UF`,
//!   `/Desc` and `/AFRelationship /Source`, listed in the catalog's `/Names /EmbeddedFiles`
//!   and `/AF`.
//! - A trailer `/ID` (a digest of the document's inputs), no encryption, no transparency, no
//!   annotations, PDF 1.7 header with a binary comment line.
//!
//! Everything is a function of the input: the same input gives the same bytes.

use std::io::Write;
use std::sync::LazyLock;

use pdf_writer::types::{AssociationKind, CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Chunk, Content, Date, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use sha2::{Digest, Sha256};
use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size};
use skrifa::raw::TableProvider;

use super::layout::{Attachment, Colour, DocumentInfo, Face, Op, PAGE_HEIGHT, PAGE_WIDTH};

/// The characters of the fixed subset (inclusive ranges); those a face lacks are left out of
/// it (and a document using them goes to krilla).
const SUBSET: &[(u32, u32)] = &[
    (0x20, 0x7E),     // printable ASCII
    (0xA0, 0xFF),     // Latin-1: accented letters, no-break space, « », €-less currency, § °
    (0x100, 0x17F),   // Latin Extended-A: œ Œ Ÿ and the letters of European names
    (0x192, 0x192),   // ƒ
    (0x218, 0x21B),   // Ș ș Ț ț
    (0x2C6, 0x2C7),   // modifier circumflex, caron
    (0x2D8, 0x2DD),   // breve, dot, ring, ogonek, tilde, double acute
    (0x2007, 0x200A), // figure, punctuation, thin and hair spaces
    (0x2010, 0x2015), // hyphens and dashes – —
    (0x2018, 0x201E), // quotation marks ‘ ’ ‚ “ ” „
    (0x2020, 0x2022), // † ‡ •
    (0x2026, 0x2026), // …
    (0x202F, 0x2030), // narrow no-break space, ‰
    (0x2032, 0x2033), // ′ ″
    (0x2039, 0x203A), // ‹ ›
    (0x20AC, 0x20AC), // €
    (0x2116, 0x2116), // №
    (0x2122, 0x2122), // ™
    (0x2190, 0x2193), // arrows
    (0x2212, 0x2212), // minus sign
    (0x2260, 0x2260), // ≠
    (0x2264, 0x2265), // ≤ ≥
];

/// Object numbers of the shared objects in every document.
const COLOUR_SPACE: Ref = Ref::new(1);
/// First object of the fonts: five objects per face (Type0, CIDFont, descriptor, program,
/// ToUnicode).
const FIRST_FONT: i32 = 2;
const OBJECTS_PER_FACE: i32 = 5;
/// Name of the colour space in page resources.
const COLOUR_SPACE_NAME: Name<'static> = Name(b"C0");
/// sRGB in CalRGB terms (IEC 61966-2-1): D65 white point, gamma 2.2, the XYZ of the
/// primaries as the matrix.
const D65: [f32; 3] = [0.9505, 1.0, 1.089];
const SRGB_MATRIX: [f32; 9] = [
    0.4124, 0.2126, 0.0193, 0.3576, 0.7152, 0.1192, 0.1805, 0.0722, 0.9505,
];

/// The faces the fast writer embeds, in resource order (`/F0`, `/F1`).
const FACES: [Face; 2] = [Face::Regular, Face::Bold];
const FONT_NAMES: [Name<'static>; 2] = [Name(b"F0"), Name(b"F1")];

/// One face, subset and serialised.
struct Embedded {
    /// Glyph code (CID) of each character of the subset, sorted by character.
    cids: Vec<(char, u16)>,
    /// The same for characters below U+0100 (0 when absent), for the common case.
    latin: [u16; 256],
}

impl Embedded {
    fn cid(&self, c: char) -> Option<u16> {
        if let Some(cid) = self.latin.get(c as usize) {
            return (*cid != 0).then_some(*cid);
        }
        self.cids
            .binary_search_by_key(&c, |(k, _)| *k)
            .ok()
            .and_then(|i| self.cids.get(i).map(|(_, cid)| *cid))
    }
}

/// What every document shares.
struct Prepared {
    faces: [Embedded; 2],
    /// The colour space and the font objects, numbered from 1.
    chunk: Chunk,
}

// The fonts are compiled into the binary; a font that does not parse or subset is a build
// defect which every test rendering a letter catches, so the error names it and stops.
#[allow(clippy::expect_used)]
static PREPARED: LazyLock<Prepared> =
    LazyLock::new(|| prepare().expect("the embedded DejaVu fonts subset"));

fn prepare() -> Result<Prepared, String> {
    let mut chunk = Chunk::new();
    chunk
        .color_space(COLOUR_SPACE)
        .cal_rgb(D65, None, Some([2.2, 2.2, 2.2]), Some(SRGB_MATRIX));
    let mut faces = Vec::new();
    for (i, face) in FACES.iter().enumerate() {
        let first = FIRST_FONT + OBJECTS_PER_FACE * i as i32;
        faces.push(prepare_face(*face, first, &mut chunk)?);
    }
    let faces: [Embedded; 2] = faces
        .try_into()
        .map_err(|_| "two faces expected".to_string())?;
    Ok(Prepared { faces, chunk })
}

fn prepare_face(face: Face, first: i32, chunk: &mut Chunk) -> Result<Embedded, String> {
    let bytes = face.bytes();
    let font = skrifa::FontRef::new(bytes).map_err(|e| format!("font: {e}"))?;
    let units_per_em = face.units_per_em();
    let to_pdf = |units: f32| units * 1000.0 / units_per_em;

    let Glyphs {
        remapper,
        cids,
        widths,
        cmap,
    } = map_subset(&font);
    let mut latin = [0u16; 256];
    for (c, cid) in &cids {
        if let Some(slot) = latin.get_mut(*c as usize) {
            *slot = *cid;
        }
    }
    let program =
        subsetter::subset(bytes, 0, &remapper).map_err(|e| format!("font subset: {e}"))?;
    let program = strip_hinting(&program).unwrap_or(program);

    let postscript = match face {
        Face::Bold => "DejaVuSans-Bold",
        _ => "DejaVuSans",
    };
    let tag = subset_tag(postscript);
    let base_font = format!("{tag}+{postscript}");

    let type0 = Ref::new(first);
    let cid_ref = Ref::new(first + 1);
    let descriptor = Ref::new(first + 2);
    let program_ref = Ref::new(first + 3);
    let to_unicode = Ref::new(first + 4);

    chunk
        .type0_font(type0)
        .base_font(Name(base_font.as_bytes()))
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_ref)
        .to_unicode(to_unicode);
    let mut cid_font = chunk.cid_font(cid_ref);
    cid_font
        .subtype(CidFontType::Type2)
        .base_font(Name(base_font.as_bytes()))
        .system_info(SYSTEM_INFO)
        .font_descriptor(descriptor)
        .default_width(0.0)
        .cid_to_gid_map_predefined(Name(b"Identity"));
    cid_font
        .widths()
        .consecutive(0, widths.iter().map(|w| to_pdf(*w)));
    cid_font.finish();

    write_descriptor(
        chunk,
        &font,
        descriptor,
        &base_font,
        program_ref,
        units_per_em,
    )?;

    let deflated = deflate(&program, 9);
    chunk
        .stream(program_ref, &deflated)
        .filter(Filter::FlateDecode)
        .pair(
            Name(b"Length1"),
            i32::try_from(program.len()).unwrap_or(i32::MAX),
        );
    let cmap = cmap.finish();
    let deflated = deflate(&cmap, 9);
    let mut to_unicode = chunk.cmap(to_unicode, &deflated);
    to_unicode.name(Name(b"Custom")).system_info(SYSTEM_INFO);
    to_unicode.filter(Filter::FlateDecode);
    to_unicode.finish();
    Ok(Embedded { cids, latin })
}

/// The glyphs of the subset, renumbered from 1 in subset order.
struct Glyphs {
    /// Old glyph id to new.
    remapper: subsetter::GlyphRemapper,
    /// The new glyph (CID) of each character of the subset.
    cids: Vec<(char, u16)>,
    /// Advance width of each new glyph, in font units.
    widths: Vec<f32>,
    /// The ToUnicode map of the new glyphs.
    cmap: UnicodeCmap,
}

/// Maps every character of [`SUBSET`] the font has to a new glyph id.
fn map_subset(font: &skrifa::FontRef<'_>) -> Glyphs {
    let charmap = font.charmap();
    let metrics = font.glyph_metrics(Size::unscaled(), LocationRef::default());
    let mut remapper = subsetter::GlyphRemapper::new();
    let mut cids = Vec::new();
    let mut widths = vec![
        metrics
            .advance_width(skrifa::GlyphId::new(0))
            .unwrap_or(0.0),
    ];
    let mut cmap = UnicodeCmap::new(Name(b"Custom"), SYSTEM_INFO);
    for c in SUBSET
        .iter()
        .flat_map(|(a, b)| *a..=*b)
        .filter_map(char::from_u32)
    {
        let Some(glyph) = charmap.map(c) else {
            continue;
        };
        let Ok(old) = u16::try_from(glyph.to_u32()) else {
            continue;
        };
        if old == 0 {
            continue;
        }
        let known = remapper.get(old).is_some();
        let cid = remapper.remap(old);
        if !known {
            widths.push(metrics.advance_width(glyph).unwrap_or(0.0));
            // Several characters may share a glyph (a space and a no-break space): the first
            // one in the subset order is the one text extraction gives back.
            cmap.pair(cid, c);
        }
        cids.push((c, cid));
    }
    Glyphs {
        remapper,
        cids,
        widths,
        cmap,
    }
}

/// The font descriptor of an embedded face: its metrics from `head`, `hhea` and `OS/2`,
/// in PDF glyph space (thousandths of an em).
fn write_descriptor(
    chunk: &mut Chunk,
    font: &skrifa::FontRef<'_>,
    descriptor: Ref,
    base_font: &str,
    program_ref: Ref,
    units_per_em: f32,
) -> Result<(), String> {
    let to_pdf = |units: f32| units * 1000.0 / units_per_em;
    let head = font.head().map_err(|e| format!("head: {e}"))?;
    let hhea = font.hhea().map_err(|e| format!("hhea: {e}"))?;
    let os2 = font.os2().map_err(|e| format!("OS/2: {e}"))?;
    let ascent = to_pdf(f32::from(hhea.ascender().to_i16()));
    let descent = to_pdf(f32::from(hhea.descender().to_i16()));
    let cap_height = os2.s_cap_height().map_or(ascent, |h| to_pdf(f32::from(h)));
    let weight = f32::from(os2.us_weight_class());
    chunk
        .font_descriptor(descriptor)
        .name(Name(base_font.as_bytes()))
        .family(Str(b"DejaVu Sans"))
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(
            to_pdf(f32::from(head.x_min())),
            to_pdf(f32::from(head.y_min())),
            to_pdf(f32::from(head.x_max())),
            to_pdf(f32::from(head.y_max())),
        ))
        .italic_angle(0.0)
        .ascent(ascent)
        .descent(descent)
        .cap_height(cap_height)
        .stem_v(10.0 + 0.244 * (weight - 50.0))
        .font_file2(program_ref);
    Ok(())
}

const SYSTEM_INFO: SystemInfo = SystemInfo {
    registry: Str(b"Adobe"),
    ordering: Str(b"Identity"),
    supplement: 0,
};

/// Six capital letters derived from the face and the subset's character set (ISO 32000-1
/// §9.6.4 asks for a tag that differs between subsets of one font).
fn subset_tag(postscript: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(postscript.as_bytes());
    for (a, b) in SUBSET {
        hasher.update(a.to_be_bytes());
        hasher.update(b.to_be_bytes());
    }
    hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| char::from(b'A' + b % 26))
        .collect()
}

/// Zlib-deflates `data` at `level`. Each thread keeps one compressor per level and resets it
/// between streams: setting one up allocates and clears a few hundred kilobytes of tables,
/// which cost more than compressing a page.
fn deflate(data: &[u8], level: u32) -> Vec<u8> {
    use std::cell::RefCell;
    thread_local! {
        static COMPRESSORS: RefCell<Vec<(u32, flate2::Compress)>> = const { RefCell::new(Vec::new()) };
    }
    let deflated = COMPRESSORS.with(|cell| {
        let mut compressors = cell.try_borrow_mut().ok()?;
        let index = match compressors.iter().position(|(l, _)| *l == level) {
            Some(i) => i,
            None => {
                compressors.push((
                    level,
                    flate2::Compress::new(flate2::Compression::new(level), true),
                ));
                compressors.len() - 1
            }
        };
        let (_, compressor) = compressors.get_mut(index)?;
        compressor.reset();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        loop {
            let consumed = usize::try_from(compressor.total_in()).ok()?;
            let input = data.get(consumed..)?;
            match compressor.compress_vec(input, &mut out, flate2::FlushCompress::Finish) {
                Ok(flate2::Status::StreamEnd) => return Some(out),
                Ok(_) => out.reserve(out.capacity().max(1024)),
                Err(_) => return None,
            }
        }
    });
    // A compressor in use on this thread (not expected) or a failure: a fresh one.
    deflated.unwrap_or_else(|| {
        let mut encoder = flate2::write::ZlibEncoder::new(
            Vec::with_capacity(data.len() / 2 + 64),
            flate2::Compression::new(level),
        );
        // Writing into a Vec cannot fail.
        let _ = encoder.write_all(data);
        encoder.finish().unwrap_or_default()
    })
}

fn face_index(face: Face) -> Option<usize> {
    FACES.iter().position(|f| *f == face)
}

/// Whether the fast writer draws `pages` (and their footers) exactly: text only in the two
/// embedded faces and within their subset, rectangles; no QR code, no link.
pub(crate) fn supports(pages: &[Vec<Op>], info: &DocumentInfo) -> bool {
    let prepared = &*PREPARED;
    let text_fits = |face: Face, text: &str| {
        face_index(face).is_some_and(|i| {
            prepared
                .faces
                .get(i)
                .is_some_and(|f| text.chars().all(|c| f.cid(c).is_some()))
        })
    };
    // The footer is "<footer> — page n/N" in the regular face.
    text_fits(Face::Regular, &info.footer)
        && text_fits(Face::Regular, " — page 0123456789/")
        && pages.iter().flatten().all(|op| match op {
            Op::Text { face, text, .. } => text_fits(*face, text),
            Op::Rect { .. } => true,
            Op::Squares { .. } | Op::Link { .. } => false,
        })
}

/// Writes `pages` as a PDF/A-3b file with `attachments`. Callers check [`supports`] first;
/// anything it would refuse is an error here.
pub(crate) fn render(
    pages: &[Vec<Op>],
    info: &DocumentInfo,
    attachments: &[Attachment],
) -> Result<Vec<u8>, String> {
    let prepared = &*PREPARED;
    let count = pages.len();
    let mut streams = Vec::with_capacity(count);
    let mut digest = Sha256::new();
    for (index, ops) in pages.iter().enumerate() {
        let footer = super::layout::footer_op(info, index, count);
        let content = page_content(prepared, ops.iter().chain(std::iter::once(&footer)))?;
        digest.update(&content);
        streams.push(deflate(&content, 1));
    }

    let shared = prepared.chunk.len();
    let mut pdf = Pdf::with_capacity(
        shared
            + streams.iter().map(Vec::len).sum::<usize>()
            + 8192
            + attachments.iter().map(|a| a.bytes.len()).sum::<usize>(),
    );
    pdf.set_version(1, 7);
    pdf.extend(&prepared.chunk);

    let mut next = FIRST_FONT + OBJECTS_PER_FACE * FACES.len() as i32;
    let mut alloc = || {
        let r = Ref::new(next);
        next += 1;
        r
    };
    let catalog = alloc();
    let page_tree = alloc();
    let metadata = alloc();
    let info_ref = alloc();
    let page_refs: Vec<(Ref, Ref)> = (0..count).map(|_| (alloc(), alloc())).collect();
    let files: Vec<(Ref, Ref)> = attachments.iter().map(|_| (alloc(), alloc())).collect();

    pdf.pages(page_tree)
        .kids(page_refs.iter().map(|(page, _)| *page))
        .count(i32::try_from(count).unwrap_or(i32::MAX));
    write_pages(&mut pdf, page_tree, &page_refs, &streams);

    let created = info.created.to_offset(time::UtcOffset::UTC);
    let date = pdf_date(created);
    let producer = format!("recommande {}", env!("CARGO_PKG_VERSION"));
    write_attachments(&mut pdf, attachments, &files, date, &mut digest);

    let xmp = xmp(info, &producer, created);
    pdf.metadata(metadata, xmp.as_bytes());
    pdf.document_info(info_ref)
        .title(TextStr(&info.title))
        .author(TextStr(&info.author))
        .subject(TextStr(&info.subject))
        .creator(TextStr("recommande"))
        .producer(TextStr(&producer))
        .creation_date(date);

    let mut cat = pdf.catalog(catalog);
    cat.pages(page_tree)
        .metadata(metadata)
        .lang(TextStr("fr-FR"));
    if !attachments.is_empty() {
        let mut names = cat.names();
        let mut tree = names.embedded_files();
        let mut entries = tree.names();
        for (attachment, (spec, _)) in attachments.iter().zip(&files) {
            entries.insert(Str(attachment.name.as_bytes()), *spec);
        }
        entries.finish();
        tree.finish();
        names.finish();
        cat.insert(Name(b"AF"))
            .array()
            .items(files.iter().map(|(spec, _)| *spec));
    }
    cat.finish();

    digest.update(info.title.as_bytes());
    digest.update(info.author.as_bytes());
    digest.update(info.subject.as_bytes());
    digest.update(created.unix_timestamp().to_be_bytes());
    let id: Vec<u8> = digest.finalize().iter().take(16).copied().collect();
    pdf.set_file_id((id.clone(), id));
    Ok(pdf.finish())
}

/// The page objects, each with its fonts, colour space and content stream.
fn write_pages(pdf: &mut Pdf, page_tree: Ref, page_refs: &[(Ref, Ref)], streams: &[Vec<u8>]) {
    for ((page_ref, content_ref), stream) in page_refs.iter().zip(streams) {
        let mut page = pdf.page(*page_ref);
        page.parent(page_tree)
            .media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .contents(*content_ref);
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        for (i, name) in FONT_NAMES.iter().enumerate() {
            fonts.pair(*name, Ref::new(FIRST_FONT + OBJECTS_PER_FACE * i as i32));
        }
        fonts.finish();
        resources
            .color_spaces()
            .pair(COLOUR_SPACE_NAME, COLOUR_SPACE);
        resources.finish();
        page.finish();
        pdf.stream(*content_ref, stream).filter(Filter::FlateDecode);
    }
}

/// The embedded files (PDF/A-3 associated files, `AFRelationship` Source), each fed to the
/// document id's digest.
fn write_attachments(
    pdf: &mut Pdf,
    attachments: &[Attachment],
    files: &[(Ref, Ref)],
    date: pdf_writer::Date,
    digest: &mut Sha256,
) {
    for (attachment, (spec, file)) in attachments.iter().zip(files) {
        digest.update(attachment.name.as_bytes());
        digest.update(&attachment.bytes);
        let deflated = deflate(&attachment.bytes, 6);
        let mut embedded = pdf.embedded_file(*file, &deflated);
        embedded.subtype(Name(attachment.media_type.as_bytes()));
        embedded.filter(Filter::FlateDecode);
        embedded
            .params()
            .size(i32::try_from(attachment.bytes.len()).unwrap_or(i32::MAX))
            .modification_date(date);
        embedded.finish();
        pdf.file_spec(*spec)
            .path(Str(attachment.name.as_bytes()))
            .unic_file(TextStr(&attachment.name))
            .description(TextStr(&attachment.description))
            .association_kind(AssociationKind::Source)
            .embedded_file_with_unicode(*file);
    }
}

/// The content stream of one page.
fn page_content<'a>(
    prepared: &Prepared,
    ops: impl Iterator<Item = &'a Op>,
) -> Result<Vec<u8>, String> {
    let mut content = Content::new();
    // The fill colour space first, so that nothing is ever painted in DeviceGray.
    content.set_fill_color_space(COLOUR_SPACE_NAME);
    let mut colour = None;
    let mut set_colour = |content: &mut Content, c: Colour| {
        if colour != Some(c) {
            content.set_fill_color([
                f32::from(c.0) / 255.0,
                f32::from(c.1) / 255.0,
                f32::from(c.2) / 255.0,
            ]);
            colour = Some(c);
        }
    };
    set_colour(&mut content, super::layout::BLACK);
    let mut in_text = false;
    let mut font = None;
    let mut codes = Vec::new();
    for op in ops {
        match op {
            Op::Text {
                x,
                baseline,
                face,
                size,
                colour: c,
                text,
            } => {
                let index = face_index(*face).ok_or("face not embedded by the fast writer")?;
                let embedded = prepared
                    .faces
                    .get(index)
                    .ok_or("face not embedded by the fast writer")?;
                codes.clear();
                for ch in text.chars() {
                    let cid = embedded.cid(ch).ok_or_else(|| {
                        format!("character U+{:04X} outside the subset", ch as u32)
                    })?;
                    codes.extend_from_slice(&cid.to_be_bytes());
                }
                set_colour(&mut content, *c);
                if !in_text {
                    content.begin_text();
                    in_text = true;
                }
                if font != Some((index, size.to_bits())) {
                    let name = FONT_NAMES.get(index).copied().unwrap_or(Name(b"F0"));
                    content.set_font(name, *size);
                    font = Some((index, size.to_bits()));
                }
                content.set_text_matrix([1.0, 0.0, 0.0, 1.0, *x, PAGE_HEIGHT - baseline]);
                content.show(Str(&codes));
            }
            Op::Rect {
                x,
                y,
                w,
                h,
                colour: c,
            } => {
                if in_text {
                    content.end_text();
                    in_text = false;
                }
                set_colour(&mut content, *c);
                content.rect(*x, PAGE_HEIGHT - y - h, *w, *h);
                content.fill_nonzero();
            }
            Op::Squares { .. } | Op::Link { .. } => {
                return Err("QR codes and links are drawn by the krilla renderer".into());
            }
        }
    }
    if in_text {
        content.end_text();
    }
    Ok(content.finish().to_vec())
}

fn pdf_date(t: time::OffsetDateTime) -> Date {
    Date::new(u16::try_from(t.year()).unwrap_or(1970))
        .month(u8::from(t.month()))
        .day(t.day())
        .hour(t.hour())
        .minute(t.minute())
        .second(t.second())
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

/// The XMP packet (ISO 16684-1) with the PDF/A identification and the same values as the
/// Info dictionary.
fn xmp(info: &DocumentInfo, producer: &str, created: time::OffsetDateTime) -> String {
    let date = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        created.year(),
        u8::from(created.month()),
        created.day(),
        created.hour(),
        created.minute(),
        created.second()
    );
    let title = escape_xml(&info.title);
    let author = escape_xml(&info.author);
    let subject = escape_xml(&info.subject);
    let producer = escape_xml(producer);
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n\
<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n\
<rdf:Description rdf:about=\"\" \
xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\" \
xmlns:pdf=\"http://ns.adobe.com/pdf/1.3/\" \
xmlns:pdfaid=\"http://www.aiim.org/pdfa/ns/id/\">\n\
<dc:format>application/pdf</dc:format>\n\
<dc:title><rdf:Alt><rdf:li xml:lang=\"x-default\">{title}</rdf:li></rdf:Alt></dc:title>\n\
<dc:creator><rdf:Seq><rdf:li>{author}</rdf:li></rdf:Seq></dc:creator>\n\
<dc:description><rdf:Alt><rdf:li xml:lang=\"x-default\">{subject}</rdf:li></rdf:Alt></dc:description>\n\
<dc:language><rdf:Bag><rdf:li>fr-FR</rdf:li></rdf:Bag></dc:language>\n\
<xmp:CreatorTool>recommande</xmp:CreatorTool>\n\
<xmp:CreateDate>{date}</xmp:CreateDate>\n\
<pdf:Producer>{producer}</pdf:Producer>\n\
<pdfaid:part>3</pdfaid:part>\n\
<pdfaid:conformance>B</pdfaid:conformance>\n\
</rdf:Description>\n\
</rdf:RDF>\n\
</x:xmpmeta>\n\
<?xpacket end=\"r\"?>"
    )
}

fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // Not allowed in XML 1.0.
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The big-endian `u16` at `at`.
fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

/// The big-endian `u32` at `at`.
fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// A composite glyph without its instructions.
fn composite_without_instructions(glyph: &[u8]) -> Option<Vec<u8>> {
    // Composite (OpenType `glyf`): components, the instructions after the last one
    // when a component says WE_HAVE_INSTRUCTIONS (0x0100).
    let mut copy = glyph.get(..10)?.to_vec();
    let mut at = 10;
    loop {
        let flags = u16_at(glyph, at)?;
        let arguments = if flags & 0x0001 != 0 { 4 } else { 2 };
        let transform = if flags & 0x0008 != 0 {
            2
        } else if flags & 0x0040 != 0 {
            4
        } else if flags & 0x0080 != 0 {
            8
        } else {
            0
        };
        let next = at + 4 + arguments + transform;
        copy.extend_from_slice(&(flags & !0x0100).to_be_bytes());
        copy.extend_from_slice(glyph.get(at + 2..next)?);
        at = next;
        if flags & 0x0020 == 0 {
            break;
        }
    }
    Some(copy)
}

/// A TrueType program without its hinting: the `fpgm`, `prep` and `cvt ` tables dropped and
/// the instructions of every glyph removed (`glyf` and `loca` rebuilt, `maxp` told). Hints
/// adjust outlines to a pixel grid at small sizes on screen; PDF viewers and printers draw
/// the outlines unhinted at these sizes, and each letter carries the program, so the bytes
/// are worth saving. `None` when the program is not laid out as expected (the caller keeps
/// it as it is).
fn strip_hinting(font: &[u8]) -> Option<Vec<u8>> {
    let count = usize::from(u16_at(font, 4)?);
    let mut tables: Vec<([u8; 4], &[u8])> = Vec::with_capacity(count);
    for i in 0..count {
        let record = 12 + 16 * i;
        let tag: [u8; 4] = font.get(record..record + 4)?.try_into().ok()?;
        let offset = usize::try_from(u32_at(font, record + 8)?).ok()?;
        let length = usize::try_from(u32_at(font, record + 12)?).ok()?;
        tables.push((tag, font.get(offset..offset.checked_add(length)?)?));
    }
    let table = |tag: &[u8; 4]| tables.iter().find(|(t, _)| t == tag).map(|(_, d)| *d);
    let head = table(b"head")?;
    let long_offsets = match u16_at(head, 50)? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let glyphs = usize::from(u16_at(table(b"maxp")?, 4)?);
    let loca = table(b"loca")?;
    let glyf = table(b"glyf")?;
    let offset_of = |i: usize| -> Option<usize> {
        if long_offsets {
            usize::try_from(u32_at(loca, 4 * i)?).ok()
        } else {
            Some(usize::from(u16_at(loca, 2 * i)?) * 2)
        }
    };
    let mut new_glyf = Vec::with_capacity(glyf.len());
    let mut offsets = Vec::with_capacity(glyphs + 1);
    for i in 0..glyphs {
        offsets.push(new_glyf.len());
        let (start, end) = (offset_of(i)?, offset_of(i + 1)?);
        if end <= start {
            continue;
        }
        let glyph = glyf.get(start..end)?;
        let contours = u16_at(glyph, 0)? as i16;
        if contours >= 0 {
            // Header, end points of the contours, instruction length, instructions, rest.
            let at = 10 + 2 * usize::from(contours as u16);
            let length = usize::from(u16_at(glyph, at)?);
            new_glyf.extend_from_slice(glyph.get(..at)?);
            new_glyf.extend_from_slice(&[0, 0]);
            new_glyf.extend_from_slice(glyph.get(at + 2 + length..)?);
        } else {
            new_glyf.extend_from_slice(&composite_without_instructions(glyph)?);
        }
        // Glyphs start at even offsets (short `loca` stores offsets / 2); four for both.
        while new_glyf.len() % 4 != 0 {
            new_glyf.push(0);
        }
    }
    offsets.push(new_glyf.len());
    let mut new_loca = Vec::with_capacity(loca.len());
    for offset in offsets {
        if long_offsets {
            new_loca.extend_from_slice(&u32::try_from(offset).ok()?.to_be_bytes());
        } else {
            new_loca.extend_from_slice(&u16::try_from(offset / 2).ok()?.to_be_bytes());
        }
    }
    let mut new_maxp = table(b"maxp")?.to_vec();
    // maxSizeOfInstructions (version 1.0 `maxp` only).
    if new_maxp.len() >= 32 {
        new_maxp[26..28].copy_from_slice(&[0, 0]);
    }
    let mut kept: Vec<([u8; 4], Vec<u8>)> = Vec::with_capacity(tables.len());
    for (tag, data) in &tables {
        let data = match tag {
            b"fpgm" | b"prep" | b"cvt " | b"hdmx" | b"LTSH" | b"VDMX" => continue,
            b"glyf" => std::mem::take(&mut new_glyf),
            b"loca" => std::mem::take(&mut new_loca),
            b"maxp" => std::mem::take(&mut new_maxp),
            _ => data.to_vec(),
        };
        kept.push((*tag, data));
    }
    Some(write_sfnt(u32_at(font, 0)?, &mut kept))
}

/// Serialises TrueType tables (sorted by tag) with their directory and checksums, and the
/// `head` checksum adjustment (OpenType `head` table).
fn write_sfnt(version: u32, tables: &mut [([u8; 4], Vec<u8>)]) -> Vec<u8> {
    fn checksum(data: &[u8]) -> u32 {
        data.chunks(4).fold(0u32, |sum, word| {
            let mut padded = [0u8; 4];
            padded[..word.len()].copy_from_slice(word);
            sum.wrapping_add(u32::from_be_bytes(padded))
        })
    }
    tables.sort_by_key(|a| a.0);
    for (tag, data) in tables.iter_mut() {
        if tag == b"head" && data.len() >= 12 {
            data[8..12].copy_from_slice(&[0, 0, 0, 0]);
        }
    }
    let count = tables.len() as u16;
    let mut power = 1u16;
    let mut log = 0u16;
    while power * 2 <= count {
        power *= 2;
        log += 1;
    }
    let mut out = Vec::new();
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&(power * 16).to_be_bytes());
    out.extend_from_slice(&log.to_be_bytes());
    out.extend_from_slice(&((count - power) * 16).to_be_bytes());
    let mut offset = 12 + 16 * tables.len();
    let mut head_at = None;
    for (tag, data) in tables.iter() {
        out.extend_from_slice(tag);
        out.extend_from_slice(&checksum(data).to_be_bytes());
        out.extend_from_slice(&(offset as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        if tag == b"head" {
            head_at = Some(offset);
        }
        offset += data.len().div_ceil(4) * 4;
    }
    for (_, data) in tables.iter() {
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(4) * 4, 0);
    }
    if let Some(at) = head_at {
        let adjustment = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
        out[at + 8..at + 12].copy_from_slice(&adjustment.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use skrifa::MetadataProvider;
    use skrifa::outline::{DrawSettings, OutlinePen};

    #[test]
    fn reused_compressors_give_the_bytes_of_fresh_ones() {
        use std::io::Read;
        let mut seed = 7u32;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (seed >> 16) as u8
                })
                .collect()
        };
        let text: Vec<u8> = b"BT /F1 10 Tf 72 700 Td (Mise en demeure) Tj ET\n".repeat(900);
        for data in [
            Vec::new(),
            b"x".to_vec(),
            noise(200_000),
            text.clone(),
            text,
        ] {
            for level in [1, 6, 9] {
                // A compressor never used before, one shot.
                let mut compressor = flate2::Compress::new(flate2::Compression::new(level), true);
                let mut fresh = Vec::with_capacity(data.len() * 2 + 1024);
                let status = compressor
                    .compress_vec(&data, &mut fresh, flate2::FlushCompress::Finish)
                    .expect("compress");
                assert_eq!(status, flate2::Status::StreamEnd);
                let reused = deflate(&data, level);
                assert!(
                    reused == fresh,
                    "level {level}, {} bytes: reused compressor differs",
                    data.len()
                );
                let mut back = Vec::new();
                flate2::read::ZlibDecoder::new(&reused[..])
                    .read_to_end(&mut back)
                    .expect("inflate");
                assert_eq!(back, data);
            }
        }
    }

    /// Records the points of an outline.
    #[derive(Default)]
    struct Points(Vec<(i32, i32)>);

    impl OutlinePen for Points {
        fn move_to(&mut self, x: f32, y: f32) {
            self.0.push((x as i32, y as i32));
        }
        fn line_to(&mut self, x: f32, y: f32) {
            self.0.push((x as i32, y as i32));
        }
        fn quad_to(&mut self, _: f32, _: f32, x: f32, y: f32) {
            self.0.push((x as i32, y as i32));
        }
        fn curve_to(&mut self, _: f32, _: f32, _: f32, _: f32, x: f32, y: f32) {
            self.0.push((x as i32, y as i32));
        }
        fn close(&mut self) {}
    }

    fn outlines(font: &[u8]) -> Vec<Vec<(i32, i32)>> {
        let font = skrifa::FontRef::new(font).expect("font parses");
        let glyphs = font.outline_glyphs();
        (0..font.maxp().expect("maxp").num_glyphs())
            .map(|g| {
                let mut pen = Points::default();
                if let Some(glyph) = glyphs.get(skrifa::GlyphId::new(u32::from(g))) {
                    glyph
                        .draw(
                            DrawSettings::unhinted(Size::unscaled(), LocationRef::default()),
                            &mut pen,
                        )
                        .expect("glyph draws");
                }
                pen.0
            })
            .collect()
    }

    #[test]
    fn stripping_hints_keeps_every_outline_and_drops_the_programs() {
        for face in FACES {
            let font = skrifa::FontRef::new(face.bytes()).expect("font parses");
            let charmap = font.charmap();
            let mut remapper = subsetter::GlyphRemapper::new();
            // Letters, accented letters, and composite glyphs (Ǻ is built from components).
            for c in "AaÉéœŒ€«»…ǺÅ".chars() {
                if let Some(g) = charmap.map(c) {
                    remapper.remap(u16::try_from(g.to_u32()).expect("glyph id"));
                }
            }
            let program = subsetter::subset(face.bytes(), 0, &remapper).expect("subset");
            let stripped = strip_hinting(&program).expect("program laid out as expected");
            assert!(stripped.len() < program.len(), "{face:?}: no byte saved");
            let parsed = skrifa::FontRef::new(&stripped).expect("stripped font parses");
            for tag in [b"fpgm", b"prep", b"cvt "] {
                assert!(
                    parsed
                        .table_data(skrifa::raw::types::Tag::new(tag))
                        .is_none(),
                    "{face:?}: {} kept",
                    String::from_utf8_lossy(tag)
                );
            }
            let before = outlines(&program);
            assert!(before.iter().filter(|o| !o.is_empty()).count() > 5);
            assert_eq!(before, outlines(&stripped), "{face:?}: outlines changed");
        }
    }
}
