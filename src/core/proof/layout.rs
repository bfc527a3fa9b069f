//! A small page-layout engine over krilla for the documents we print: A4 pages, wrapped
//! paragraphs, headings, label/value fields, tables, monospaced digests, banners and QR
//! codes, with page numbers "n / N" in every footer.
//!
//! Layout runs first into a list of pages of drawing operations; rendering follows, so the
//! footer knows the page count. Text is measured with the same font files that are embedded
//! (DejaVu, subset by krilla), so wrapping matches what is drawn. The output is a PDF/A-3b
//! file (ISO 19005-3): fonts embedded, XMP metadata, sRGB output intent, and files attached
//! with their relationship — which keeps it readable and self-describing for decades.
//! Everything is a pure function of the input: the same input gives the same bytes.

use std::sync::LazyLock;

use krilla::Document;
use krilla::configure::{Archival, ConfigurationBuilder};
use krilla::embed::{AssociationKind, EmbeddedFile, MimeType};
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::{DateTime, Metadata};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule};
use krilla::text::{Font, TextDirection};
use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size};

/// A4 width in PostScript points.
pub const PAGE_WIDTH: f32 = 595.28;
/// A4 height in PostScript points.
pub const PAGE_HEIGHT: f32 = 841.89;
/// Left and right margin.
pub const MARGIN_X: f32 = 56.0;
/// Top margin.
const MARGIN_TOP: f32 = 56.0;
/// Bottom margin (the footer sits inside it).
const MARGIN_BOTTOM: f32 = 64.0;
/// Width available to text.
pub const TEXT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN_X;

static REGULAR_BYTES: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
static BOLD_BYTES: &[u8] = include_bytes!("fonts/DejaVuSans-Bold.ttf");
static MONO_BYTES: &[u8] = include_bytes!("fonts/DejaVuSansMono.ttf");

/// The three faces we print with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// DejaVu Sans.
    Regular,
    /// DejaVu Sans Bold.
    Bold,
    /// DejaVu Sans Mono (digests, identifiers).
    Mono,
}

struct LoadedFace {
    pdf: Font,
    bytes: &'static [u8],
    units_per_em: f32,
    /// Advance width (font units) of every character below [`ADVANCE_TABLE`], half an em for
    /// characters the face lacks: measuring a line is then a table look-up per character.
    advances: Vec<f32>,
}

/// Characters whose advances are tabulated once per face (Latin, Greek, Cyrillic,
/// punctuation, currency, arrows, mathematical operators); others are looked up each time.
const ADVANCE_TABLE: u32 = 0x3000;

struct Fonts {
    regular: LoadedFace,
    bold: LoadedFace,
    mono: LoadedFace,
}

// The three font files are compiled into the binary and parsed once; a file that does not
// parse is a build defect that every PDF test catches, so failing loudly here is right.
#[allow(clippy::expect_used)]
static FONTS: LazyLock<Fonts> = LazyLock::new(|| {
    let load = |bytes: &'static [u8]| {
        let pdf = Font::new(bytes.into(), 0).expect("embedded DejaVu font parses");
        let units_per_em = skrifa::FontRef::new(bytes)
            .map(|f| {
                f32::from(
                    f.metrics(Size::unscaled(), LocationRef::default())
                        .units_per_em,
                )
            })
            .unwrap_or(2048.0);
        let advances = (0..ADVANCE_TABLE)
            .map(|c| {
                char::from_u32(c)
                    .map_or(units_per_em / 2.0, |c| slow_advance(bytes, units_per_em, c))
            })
            .collect();
        LoadedFace {
            pdf,
            bytes,
            units_per_em,
            advances,
        }
    };
    Fonts {
        regular: load(REGULAR_BYTES),
        bold: load(BOLD_BYTES),
        mono: load(MONO_BYTES),
    }
});

impl Face {
    fn loaded(self) -> &'static LoadedFace {
        match self {
            Face::Regular => &FONTS.regular,
            Face::Bold => &FONTS.bold,
            Face::Mono => &FONTS.mono,
        }
    }

    /// Width of `text` at `size` points: the advances of its characters, unshaped (no
    /// kerning, no ligature), which is also how the fast backend draws them.
    pub fn width(self, text: &str, size: f32) -> f32 {
        let face = self.loaded();
        let mut units = 0.0f32;
        for c in text.chars() {
            units += face.advance(c);
        }
        face.to_points(units, size)
    }

    /// Units per em of the face.
    pub(crate) fn units_per_em(self) -> f32 {
        self.loaded().units_per_em
    }

    /// The font file.
    pub(crate) fn bytes(self) -> &'static [u8] {
        self.loaded().bytes
    }
}

impl LoadedFace {
    /// Advance of `c` in font units (half an em when the face lacks it).
    fn advance(&self, c: char) -> f32 {
        match self.advances.get(c as usize) {
            Some(units) => *units,
            None => slow_advance(self.bytes, self.units_per_em, c),
        }
    }

    fn to_points(&self, units: f32, size: f32) -> f32 {
        units * size / self.units_per_em
    }
}

/// Advance of `c` read from the font file (half an em when the face lacks it).
fn slow_advance(bytes: &[u8], units_per_em: f32, c: char) -> f32 {
    let Ok(font) = skrifa::FontRef::new(bytes) else {
        return units_per_em / 2.0;
    };
    font.charmap()
        .map(c)
        .and_then(|g| {
            font.glyph_metrics(Size::unscaled(), LocationRef::default())
                .advance_width(g)
        })
        .unwrap_or(units_per_em / 2.0)
}

/// An RGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(pub u8, pub u8, pub u8);

/// Black.
pub const BLACK: Colour = Colour(0, 0, 0);
/// Grey for secondary text (English labels, footers).
pub const GREY: Colour = Colour(90, 90, 90);
/// Dark red for warnings.
pub const RED: Colour = Colour(160, 0, 0);
/// Pale red background of warning banners.
pub const PALE_RED: Colour = Colour(253, 232, 232);
/// Pale grey background of boxes.
pub const PALE_GREY: Colour = Colour(242, 242, 242);
/// Dark blue for titles and links.
pub const BLUE: Colour = Colour(20, 50, 110);

/// A drawing operation; positions are in points from the top-left corner of the page.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// A run of text, its baseline starting at (`x`, `baseline`).
    Text {
        x: f32,
        baseline: f32,
        face: Face,
        size: f32,
        colour: Colour,
        text: String,
    },
    /// A filled rectangle, top-left corner at (`x`, `y`).
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        colour: Colour,
    },
    /// Black squares (QR code modules).
    Squares { squares: Vec<(f32, f32)>, side: f32 },
    /// A link annotation.
    Link {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        url: String,
    },
}

/// The footer of page `index` (from 0) of `count`.
pub(crate) fn footer_op(info: &DocumentInfo, index: usize, count: usize) -> Op {
    Op::Text {
        x: MARGIN_X,
        baseline: PAGE_HEIGHT - MARGIN_BOTTOM / 2.0,
        face: Face::Regular,
        size: 7.5,
        colour: GREY,
        text: format!("{} — page {}/{}", info.footer, index + 1, count),
    }
}

/// A file attached to the PDF (PDF/A-3 associated file).
#[derive(Debug, Clone)]
pub struct Attachment {
    /// File name shown by PDF readers.
    pub name: String,
    /// Media type.
    pub media_type: &'static str,
    /// What it is, in words.
    pub description: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Document-level information.
#[derive(Debug, Clone)]
pub struct DocumentInfo {
    /// Title (metadata and reader window).
    pub title: String,
    /// Subject.
    pub subject: String,
    /// Author (the provider).
    pub author: String,
    /// Creation date, UTC: a time taken from the evidence, so rendering is reproducible.
    pub created: time::OffsetDateTime,
    /// Footer text left of the page number.
    pub footer: String,
}

/// Lays out a document top-down.
pub struct Layout {
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Default for Layout {
    fn default() -> Self {
        Self::new()
    }
}

impl Layout {
    /// An empty document with one blank page.
    pub fn new() -> Self {
        Layout {
            pages: vec![Vec::new()],
            y: MARGIN_TOP,
        }
    }

    /// Vertical position of the cursor (from the top of the page).
    pub fn cursor(&self) -> f32 {
        self.y
    }

    /// Puts the cursor back to `y` on the current page (to lay out a second column).
    pub fn move_to(&mut self, y: f32) {
        self.y = y;
    }

    /// Moves the cursor down.
    pub fn space(&mut self, points: f32) {
        self.y += points;
    }

    /// Starts a new page unless `needed` points still fit on this one.
    pub fn keep(&mut self, needed: f32) {
        if self.y + needed > PAGE_HEIGHT - MARGIN_BOTTOM {
            self.pages.push(Vec::new());
            self.y = MARGIN_TOP;
        }
    }

    fn push(&mut self, op: Op) {
        if let Some(page) = self.pages.last_mut() {
            page.push(op);
        }
    }

    /// Draws `text` at an absolute position on the current page, without moving the cursor.
    pub fn text_at(
        &mut self,
        x: f32,
        baseline: f32,
        face: Face,
        size: f32,
        colour: Colour,
        text: &str,
    ) {
        self.push(Op::Text {
            x,
            baseline,
            face,
            size,
            colour,
            text: text.to_string(),
        });
    }

    /// A wrapped paragraph in the text column, starting at `indent`.
    pub fn paragraph(&mut self, text: &str, face: Face, size: f32, colour: Colour) {
        self.paragraph_in(MARGIN_X, TEXT_WIDTH, text, face, size, colour);
    }

    /// A wrapped paragraph in the column `[x, x + width]`.
    pub fn paragraph_in(
        &mut self,
        x: f32,
        width: f32,
        text: &str,
        face: Face,
        size: f32,
        colour: Colour,
    ) {
        let leading = size * 1.35;
        for line in wrap(text, face, size, width) {
            self.keep(leading);
            self.y += leading;
            let baseline = self.y - size * 0.3;
            self.text_at(x, baseline, face, size, colour, &line);
        }
    }

    /// A section heading with its English label in grey.
    pub fn heading(&mut self, french: &str, english: &str) {
        self.keep(48.0);
        self.space(10.0);
        self.paragraph(french, Face::Bold, 12.5, BLUE);
        if !english.is_empty() {
            self.paragraph(english, Face::Regular, 8.5, GREY);
        }
        self.space(3.0);
        let y = self.y;
        self.push(Op::Rect {
            x: MARGIN_X,
            y,
            w: TEXT_WIDTH,
            h: 0.6,
            colour: BLUE,
        });
        self.space(5.0);
    }

    /// A label (French, with its English in grey below) and a value to its right. Values in
    /// [`Face::Mono`] are broken anywhere (digests), others at spaces.
    pub fn field(&mut self, french: &str, english: &str, value: &str, face: Face) {
        const LABEL_WIDTH: f32 = 170.0;
        // Digests in monospace at a size where 64 hex digits fit on one line, so a reader
        // (or pdftotext) sees them whole.
        let size = if face == Face::Mono { 7.6 } else { 9.5 };
        let value_x = MARGIN_X + LABEL_WIDTH;
        let value_width = TEXT_WIDTH - LABEL_WIDTH;
        let lines: Vec<String> = value
            .split('\n')
            .flat_map(|part| wrap(part, face, size, value_width))
            .collect();
        let label_lines = wrap(french, Face::Bold, 8.5, LABEL_WIDTH - 8.0);
        let rows = lines
            .len()
            .max(label_lines.len() + usize::from(!english.is_empty()));
        let leading = size * 1.35;
        self.keep(leading * rows as f32 + 4.0);
        let top = self.y;
        for (i, line) in label_lines.iter().enumerate() {
            let baseline = top + leading * (i as f32 + 1.0) - size * 0.3;
            self.text_at(MARGIN_X, baseline, Face::Bold, 8.5, BLACK, line);
        }
        if !english.is_empty() {
            let baseline = top + leading * (label_lines.len() as f32 + 1.0) - size * 0.3;
            self.text_at(MARGIN_X, baseline, Face::Regular, 7.5, GREY, english);
        }
        for (i, line) in lines.iter().enumerate() {
            let baseline = top + leading * (i as f32 + 1.0) - size * 0.3;
            self.text_at(value_x, baseline, face, size, BLACK, line);
        }
        self.y = top + leading * rows as f32 + 4.0;
    }

    /// A coloured box with a bold wrapped message (warnings such as the development PKI).
    pub fn banner(&mut self, lines: &[&str], text: Colour, background: Colour) {
        let styled: Vec<(&str, Face, f32, Colour)> =
            lines.iter().map(|l| (*l, Face::Bold, 9.5, text)).collect();
        self.framed(&styled, background);
    }

    /// The box a PDF signature's widget covers: a pale frame with wrapped lines, each in its
    /// face, size and colour. Its rectangle in PDF user space (`[x1, y1, x2, y2]`, from the
    /// bottom-left corner) on the current page.
    pub fn signature_box(&mut self, lines: &[(&str, Face, f32, Colour)]) -> [f32; 4] {
        self.framed(lines, PALE_GREY)
    }

    /// Wrapped lines on a `background` box the width of the text; its PDF rectangle.
    fn framed(&mut self, lines: &[(&str, Face, f32, Colour)], background: Colour) -> [f32; 4] {
        let wrapped: Vec<(String, Face, f32, Colour)> = lines
            .iter()
            .flat_map(|&(text, face, size, colour)| {
                wrap(text, face, size, TEXT_WIDTH - 16.0)
                    .into_iter()
                    .map(move |l| (l, face, size, colour))
            })
            .collect();
        let height = wrapped
            .iter()
            .map(|(_, _, size, _)| size * 1.35)
            .sum::<f32>()
            + 12.0;
        self.keep(height + 6.0);
        let top = self.y;
        self.push(Op::Rect {
            x: MARGIN_X,
            y: top,
            w: TEXT_WIDTH,
            h: height,
            colour: background,
        });
        let mut baseline = top + 6.0;
        for (line, face, size, colour) in &wrapped {
            baseline += size * 1.35;
            self.text_at(
                MARGIN_X + 8.0,
                baseline - size * 0.3,
                *face,
                *size,
                *colour,
                line,
            );
        }
        self.y = top + height + 6.0;
        [
            MARGIN_X,
            PAGE_HEIGHT - top - height,
            MARGIN_X + TEXT_WIDTH,
            PAGE_HEIGHT - top,
        ]
    }

    /// A table: a bold header row, then `rows`. No word of a cell is ever broken, so dates,
    /// amounts (whose thousands are separated by no-break spaces) and references stay on one
    /// line: each column is at least as wide as its longest word and gets the room it needs
    /// for its cells on one line when the table has it, so only cells with several words
    /// (text) wrap, at spaces. When even that does not fit, the font gets smaller (8.5 down
    /// to 7 points), then the first cell of each row goes on a line of its own above the
    /// others. A table that continues on the next page repeats its header row there.
    pub fn table(&mut self, header: &[String], rows: &[Vec<String>]) {
        let fit = TableFit::new(header, rows);
        let header = fit.lay_out(header, true);
        let rows: Vec<LaidRow> = rows.iter().map(|r| fit.lay_out(r, false)).collect();
        // The header row is never left alone at the foot of a page.
        self.keep(header.height + rows.first().map_or(0.0, |r| r.height));
        self.table_row(&fit, &header);
        for row in &rows {
            if self.y + row.height > PAGE_HEIGHT - MARGIN_BOTTOM {
                self.pages.push(Vec::new());
                self.y = MARGIN_TOP;
                self.table_row(&fit, &header);
            }
            self.table_row(&fit, row);
        }
        self.space(4.0);
    }

    /// Draws one row of a table laid out by `fit` at the cursor, then a rule under it.
    fn table_row(&mut self, fit: &TableFit, row: &LaidRow) {
        let face = if row.bold { Face::Bold } else { Face::Regular };
        let size = fit.size;
        let leading = size * 1.35;
        self.keep(row.height);
        let top = self.y;
        if row.bold {
            self.push(Op::Rect {
                x: MARGIN_X,
                y: top,
                w: TEXT_WIDTH,
                h: row.height,
                colour: PALE_GREY,
            });
        }
        // With the first cell apart, it runs across the table above the others.
        for (j, line) in row.lead.iter().enumerate() {
            let baseline = top + 2.0 + leading * (j as f32 + 1.0) - size * 0.3;
            self.text_at(
                MARGIN_X + CELL_PADDING / 2.0,
                baseline,
                face,
                size,
                BLACK,
                line,
            );
        }
        let line_top = top + 2.0 + leading * row.lead.len() as f32;
        for (lines, (x, _)) in row.cells.iter().zip(&fit.columns) {
            for (j, line) in lines.iter().enumerate() {
                let baseline = line_top + leading * (j as f32 + 1.0) - size * 0.3;
                self.text_at(x + CELL_PADDING / 2.0, baseline, face, size, BLACK, line);
            }
        }
        self.y = top + row.height;
        self.push(Op::Rect {
            x: MARGIN_X,
            y: self.y,
            w: TEXT_WIDTH,
            h: 0.3,
            colour: GREY,
        });
    }

    /// A QR code of `payload`, `side` points wide, at `x` and the cursor, with a caption to
    /// its right; the caption's URL is a link.
    pub fn qr_with_caption(
        &mut self,
        payload: &str,
        side: f32,
        caption: &[(&str, Face, f32)],
        url: &str,
    ) {
        let Ok(code) =
            qrcode::QrCode::with_error_correction_level(payload.as_bytes(), qrcode::EcLevel::M)
        else {
            self.paragraph(payload, Face::Mono, 8.0, BLACK);
            return;
        };
        let modules = code.width();
        let quiet = 2usize;
        let module = side / (modules + 2 * quiet) as f32;
        self.keep(side + 8.0);
        let top = self.y;
        let mut squares = Vec::new();
        for (i, colour) in code.to_colors().iter().enumerate() {
            if *colour == qrcode::Color::Dark {
                let (row, col) = (i / modules, i % modules);
                squares.push((
                    MARGIN_X + (col + quiet) as f32 * module,
                    top + (row + quiet) as f32 * module,
                ));
            }
        }
        self.push(Op::Squares {
            squares,
            side: module,
        });
        self.push(Op::Link {
            x: MARGIN_X,
            y: top,
            w: side,
            h: side,
            url: url.to_string(),
        });
        let text_x = MARGIN_X + side + 12.0;
        let width = TEXT_WIDTH - side - 12.0;
        self.y = top + 4.0;
        for (text, face, size) in caption {
            self.paragraph_in(text_x, width, text, *face, *size, BLACK);
            self.space(2.0);
        }
        self.y = self.y.max(top + side) + 6.0;
    }

    /// Renders the pages into a PDF/A-3b file with `attachments` associated to it, with the
    /// fast writer ([`super::fastpdf`]) when every operation and character is within what it
    /// draws (text in DejaVu Sans and Sans Bold from its fixed subset, rectangles), otherwise
    /// with [`Layout::render`]. Line breaks are the same either way: both measure text with
    /// [`Face::width`].
    pub fn render_fast(
        self,
        info: &DocumentInfo,
        attachments: Vec<Attachment>,
    ) -> Result<Vec<u8>, String> {
        if super::fastpdf::supports(&self.pages, info) {
            super::fastpdf::render(&self.pages, info, &attachments)
        } else {
            self.render(info, attachments)
        }
    }

    /// Renders the pages into a PDF/A-3b file with `attachments` associated to it (krilla:
    /// shaped text, fonts subset per document).
    pub fn render(
        self,
        info: &DocumentInfo,
        attachments: Vec<Attachment>,
    ) -> Result<Vec<u8>, String> {
        let configuration = ConfigurationBuilder::new()
            .with_archival_validator(Archival::A3_B)
            .finish()
            .map_err(|e| format!("PDF/A configuration: {e:?}"))?;
        let settings = krilla::SerializeSettings {
            configuration,
            ..Default::default()
        };
        let mut document = Document::new_with(settings);
        let created = pdf_date(info.created);
        document.set_metadata(
            Metadata::new()
                .title(info.title.clone())
                .description(info.subject.clone())
                .authors(vec![info.author.clone()])
                .creator("recommande".into())
                .producer(format!("recommande {}", env!("CARGO_PKG_VERSION")))
                .language("fr-FR".into())
                .creation_date(created),
        );
        let count = self.pages.len();
        for (index, ops) in self.pages.into_iter().enumerate() {
            let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
                .ok_or_else(|| "page size".to_string())?;
            let mut page = document.start_page_with(settings);
            let mut links = Vec::new();
            {
                let mut surface = page.surface();
                let footer_op = footer_op(info, index, count);
                for op in ops.iter().chain(std::iter::once(&footer_op)) {
                    draw(&mut surface, op, &mut links);
                }
                surface.finish();
            }
            for (x, y, w, h, url) in links {
                if let Some(rect) = Rect::from_xywh(x, y, w, h) {
                    let link = krilla::annotation::LinkAnnotation::new(
                        rect,
                        krilla::annotation::Target::Action(
                            krilla::action::LinkAction::new(url).into(),
                        ),
                    );
                    page.add_annotation(krilla::annotation::Annotation::new_link(
                        link,
                        Some("Vérifier en ligne / Verify online".into()),
                    ));
                }
            }
            page.finish();
        }
        for attachment in attachments {
            let added = document.embed_file(EmbeddedFile {
                path: attachment.name,
                mime_type: MimeType::new(attachment.media_type),
                description: Some(attachment.description),
                association_kind: AssociationKind::Source,
                data: attachment.bytes.into(),
                modification_date: Some(created),
                compress: Some(true),
                location: None,
            });
            if added.is_none() {
                return Err("two attachments with the same name".into());
            }
        }
        document
            .finish()
            .map_err(|e| format!("PDF generation failed: {e:?}"))
    }
}

/// A link drawn on a page: its rectangle and target, annotated once the surface is done.
type PageLink = (f32, f32, f32, f32, String);

/// Draws one operation on a page's surface; links are set aside for the page's annotations.
fn draw(surface: &mut krilla::surface::Surface<'_>, op: &Op, links: &mut Vec<PageLink>) {
    match op {
        Op::Text {
            x,
            baseline,
            face,
            size,
            colour,
            text,
        } => {
            surface.set_fill(Some(fill(*colour)));
            surface.draw_text(
                Point::from_xy(*x, *baseline),
                face.loaded().pdf.clone(),
                *size,
                text,
                false,
                TextDirection::Auto,
            );
        }
        Op::Rect { x, y, w, h, colour } => {
            if let Some(rect) = Rect::from_xywh(*x, *y, *w, *h) {
                let mut path = PathBuilder::new();
                path.push_rect(rect);
                if let Some(path) = path.finish() {
                    surface.set_fill(Some(fill(*colour)));
                    surface.draw_path(&path);
                }
            }
        }
        Op::Squares { squares, side } => {
            let mut path = PathBuilder::new();
            for (x, y) in squares {
                // A hair wider than the module so adjacent squares leave no seam.
                if let Some(rect) = Rect::from_xywh(*x, *y, side + 0.05, side + 0.05) {
                    path.push_rect(rect);
                }
            }
            if let Some(path) = path.finish() {
                surface.set_fill(Some(fill(BLACK)));
                surface.draw_path(&path);
            }
        }
        Op::Link { x, y, w, h, url } => links.push((*x, *y, *w, *h, url.clone())),
    }
}

/// Room left and right of a cell's text, in points.
const CELL_PADDING: f32 = 6.0;

/// Font sizes a table tries, largest first, before putting the first cell apart.
const TABLE_SIZES: [f32; 4] = [8.5, 8.0, 7.5, 7.0];

/// How a table is laid out: its font size, each column's left edge and width, and whether
/// the first cell of each row is written on a line of its own.
struct TableFit {
    size: f32,
    columns: Vec<(f32, f32)>,
    lead_apart: bool,
}

impl TableFit {
    /// The largest size at which no word of the table must be broken; then the same with
    /// the first column apart; as a last resort (words longer than the page), the smallest
    /// size with the first column apart and equal columns, words broken.
    fn new(header: &[String], rows: &[Vec<String>]) -> TableFit {
        for lead_apart in [false, true] {
            for size in TABLE_SIZES {
                if let Some(widths) = column_widths(header, rows, size, usize::from(lead_apart)) {
                    return TableFit::from_widths(size, widths, lead_apart);
                }
            }
        }
        let n = header.len().max(1);
        let rest = n.saturating_sub(1).max(1);
        let widths = (0..n)
            .map(|i| {
                if i == 0 && n > 1 {
                    0.0
                } else {
                    TEXT_WIDTH / rest as f32
                }
            })
            .collect();
        TableFit::from_widths(TABLE_SIZES[TABLE_SIZES.len() - 1], widths, n > 1)
    }

    fn from_widths(size: f32, widths: Vec<f32>, lead_apart: bool) -> TableFit {
        let mut x = MARGIN_X;
        let columns = widths
            .into_iter()
            .map(|w| {
                let column = (x, w);
                x += w;
                column
            })
            .collect();
        TableFit {
            size,
            columns,
            lead_apart,
        }
    }

    /// The lines of each cell of a row (the first cell's apart when it is on a line of its
    /// own; then an empty cell in its place) and the row's height.
    fn lay_out(&self, cells: &[String], bold: bool) -> LaidRow {
        let face = if bold { Face::Bold } else { Face::Regular };
        let leading = self.size * 1.35;
        let skip = usize::from(self.lead_apart);
        let lead = if self.lead_apart {
            let first = cells.first().map(String::as_str).unwrap_or_default();
            wrap(first, face, self.size, TEXT_WIDTH - CELL_PADDING)
        } else {
            Vec::new()
        };
        let laid: Vec<Vec<String>> = cells
            .iter()
            .zip(&self.columns)
            .enumerate()
            .map(|(i, (cell, (_, w)))| {
                if i < skip {
                    Vec::new()
                } else {
                    wrap(cell, face, self.size, w - CELL_PADDING)
                }
            })
            .collect();
        let tallest = laid.iter().map(Vec::len).max().unwrap_or(0).max(1);
        LaidRow {
            height: (tallest + lead.len()) as f32 * leading + 4.0,
            lead,
            cells: laid,
            bold,
        }
    }
}

/// A row of a table, its cells wrapped into lines.
struct LaidRow {
    /// The first cell's lines when it is written apart, above the others.
    lead: Vec<String>,
    /// Each cell's lines (none for a cell written apart).
    cells: Vec<Vec<String>>,
    height: f32,
    /// The heading row.
    bold: bool,
}

/// Widths of the columns from `skip` on at `size` (the skipped ones get none), or `None`
/// when their longest words alone do not fit in the text width. Each column gets at least
/// its longest word (header in bold, cells in regular); the room left goes to the columns
/// whose cells would otherwise wrap, in proportion to what they lack, and once every cell
/// fits on one line, to all columns in proportion to their width.
fn column_widths(
    header: &[String],
    rows: &[Vec<String>],
    size: f32,
    skip: usize,
) -> Option<Vec<f32>> {
    let n = header.len();
    let mut least = vec![0.0f32; n];
    let mut natural = vec![0.0f32; n];
    for (i, (least, natural)) in least
        .iter_mut()
        .zip(natural.iter_mut())
        .enumerate()
        .skip(skip)
    {
        let cells = std::iter::once((header.get(i), Face::Bold))
            .chain(rows.iter().map(|r| (r.get(i), Face::Regular)));
        for (cell, face) in cells {
            let Some(cell) = cell else { continue };
            // A hundredth of a point over, so that `wrap` (which measures the same way) never
            // finds the word a rounding error too wide.
            *natural = natural.max(face.width(cell, size) + CELL_PADDING + 0.01);
            for word in cell.split(' ') {
                *least = least.max(face.width(word, size) + CELL_PADDING + 0.01);
            }
        }
    }
    let least_sum: f32 = least.iter().sum();
    let natural_sum: f32 = natural.iter().sum();
    if least_sum > TEXT_WIDTH {
        return None;
    }
    if natural_sum <= TEXT_WIDTH {
        let share = if natural_sum > 0.0 {
            TEXT_WIDTH / natural_sum
        } else {
            0.0
        };
        return Some(natural.iter().map(|w| w * share).collect());
    }
    let share = (TEXT_WIDTH - least_sum) / (natural_sum - least_sum);
    Some(
        least
            .iter()
            .zip(&natural)
            .map(|(l, nat)| l + (nat - l) * share)
            .collect(),
    )
}

fn fill(colour: Colour) -> Fill {
    Fill {
        paint: krilla::color::rgb::Color::new(colour.0, colour.1, colour.2).into(),
        opacity: NormalizedF32::ONE,
        rule: FillRule::NonZero,
    }
}

fn pdf_date(t: time::OffsetDateTime) -> DateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    DateTime::new(u16::try_from(t.year()).unwrap_or(1970))
        .month(u8::from(t.month()))
        .day(t.day())
        .hour(t.hour())
        .minute(t.minute())
        .second(t.second())
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

/// Splits `text` into lines no wider than `width`: at spaces when possible, inside a word
/// when a word alone is too wide (digests, URLs).
pub fn wrap(text: &str, face: Face, size: f32, width: f32) -> Vec<String> {
    // Widths are summed character by character from the start of the line, in the same order
    // as `Face::width` would sum them, so the result is the same as measuring each candidate
    // line from scratch, without doing so.
    let loaded = face.loaded();
    let fits = |units: f32| loaded.to_points(units, size) <= width;
    let space = loaded.advance(' ');
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_units = 0.0f32;
    for word in text.split(' ') {
        let mut candidate = line_units;
        if !line.is_empty() {
            candidate += space;
        }
        for c in word.chars() {
            candidate += loaded.advance(c);
        }
        if fits(candidate) {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
            line_units = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        // The word alone: break it by characters if it does not fit.
        let mut piece = String::new();
        let mut piece_units = 0.0f32;
        for c in word.chars() {
            let advance = loaded.advance(c);
            if !piece.is_empty() && !fits(piece_units + advance) {
                lines.push(std::mem::take(&mut piece));
                piece_units = 0.0;
            }
            piece.push(c);
            piece_units += advance;
        }
        line = piece;
        line_units = piece_units;
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_character_and_respects_the_width() {
        let text = "Le destinataire a accepté la lettre recommandée électronique ; empreinte \
                    9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 incluse.";
        let lines = wrap(text, Face::Regular, 10.0, 200.0);
        assert!(lines.len() > 2);
        for line in &lines {
            assert!(Face::Regular.width(line, 10.0) <= 200.0, "{line}");
        }
        let joined: String = lines.concat();
        assert_eq!(
            joined.replace(' ', ""),
            text.replace(' ', ""),
            "no character lost or added"
        );
    }

    fn texts(ops: &[Op]) -> Vec<(Face, f32, String)> {
        ops.iter()
            .filter_map(|op| match op {
                Op::Text {
                    face, size, text, ..
                } => Some((*face, *size, text.clone())),
                _ => None,
            })
            .collect()
    }

    fn cells(
        header: &[&str],
        rows: usize,
        row: impl Fn(usize) -> Vec<String>,
    ) -> (Vec<String>, Vec<Vec<String>>) {
        (
            header.iter().map(|h| h.to_string()).collect(),
            (0..rows).map(row).collect(),
        )
    }

    #[test]
    fn a_table_continued_on_the_next_page_repeats_its_heading_row() {
        let (header, rows) = cells(&["Facture", "Échéance", "Total"], 120, |i| {
            vec![
                format!("F-{i}"),
                "31/05/2026".into(),
                "1\u{202F}234,56\u{A0}€".into(),
            ]
        });
        let mut page = Layout::new();
        page.table(&header, &rows);
        assert!(page.pages.len() >= 3, "{} pages", page.pages.len());
        for (p, ops) in page.pages.iter().enumerate() {
            let bold: Vec<String> = texts(ops)
                .into_iter()
                .filter(|(face, _, _)| *face == Face::Bold)
                .map(|(_, _, t)| t)
                .collect();
            assert_eq!(bold, ["Facture", "Échéance", "Total"], "page {}", p + 1);
        }
        let drawn: Vec<String> = page
            .pages
            .iter()
            .flat_map(|ops| texts(ops))
            .filter(|(face, _, _)| *face == Face::Regular)
            .map(|(_, _, t)| t)
            .collect();
        assert_eq!(drawn.len(), 120 * 3, "each cell on one line, none lost");
    }

    #[test]
    fn numbers_are_never_broken_and_a_too_wide_table_shrinks_then_puts_its_first_column_apart() {
        let amount = "12\u{202F}345\u{202F}678,90\u{A0}€".to_string();
        let header = [
            "Facture",
            "Émise le",
            "Échéance",
            "Montant",
            "Déjà réglé",
            "Principal dû",
            "Intérêts",
            "Indemnité forfaitaire",
            "Total",
        ];
        let row = |number: &str| {
            let mut r = vec![number.to_string(), "30/04/2026".into(), "31/05/2026".into()];
            r.extend(std::iter::repeat_n(amount.clone(), 6));
            r
        };
        for number in ["F-17", "FACT-2026-00000000070001"] {
            let (header, rows) = cells(&header, 3, |_| row(number));
            let mut page = Layout::new();
            page.table(&header, &rows);
            let drawn = texts(&page.pages[0]);
            let regular: Vec<&String> = drawn
                .iter()
                .filter(|(f, _, _)| *f == Face::Regular)
                .map(|(_, _, t)| t)
                .collect();
            // Every cell is drawn whole, as one run of text.
            assert_eq!(
                regular.iter().filter(|t| ***t == amount).count(),
                18,
                "{number}: {regular:?}"
            );
            assert_eq!(
                regular.iter().filter(|t| **t == number).count(),
                3,
                "{number}"
            );
            assert_eq!(regular.iter().filter(|t| **t == "31/05/2026").count(), 3);
            // Header words are never cut either.
            for (face, _, text) in &drawn {
                if *face == Face::Bold {
                    assert!(
                        header
                            .iter()
                            .any(|h| h.split(' ').any(|w| text.split(' ').any(|t| t == w))),
                        "{text:?} is a piece of a word"
                    );
                }
            }
            let size = drawn[0].1;
            assert!((7.0..=8.5).contains(&size), "{size}");
        }
        let fit = TableFit::new(
            &header.map(String::from),
            &[row("FACT-2026-00000000070001")],
        );
        assert!(
            fit.lead_apart,
            "24-character numbers go on a line of their own"
        );
        let mut usual = row("F-2026-101");
        for cell in &mut usual[3..] {
            *cell = "12\u{202F}500,00\u{A0}€".into();
        }
        assert!(
            !TableFit::new(&header.map(String::from), &[usual]).lead_apart,
            "a usual letter keeps one line per invoice"
        );
    }

    #[test]
    fn accented_letters_have_real_glyph_widths() {
        // A glyph missing from the font would fall back to half an em for every character.
        let accented = Face::Regular.width("éèàçôû", 10.0);
        let plain = Face::Regular.width("eeacou", 10.0);
        assert!((accented - plain).abs() < 0.5, "{accented} vs {plain}");
    }
}
