//! Batches: many letters in one request (docs/API.md, batches: `POST /v1/batches`), as JSON
//! `{"defaults":{…},"letters":[…]}` or as CSV with one row per letter.
//!
//! This module is the core without I/O: it turns a request body into rows, and every row
//! into **the very JSON object a single `POST /v1/letters` takes** ([`letter_body`]), which
//! is then checked by the same [`DepositRequest::parse`] as a single letter
//! ([`check_letter`]). A row is never a second kind of letter: whatever `POST /v1/letters`
//! accepts, a batch row accepts, and nothing else.
//!
//! Row numbers: in a JSON batch, the index in the `letters` array (from 0); in a CSV batch,
//! the line number in the file (the header is line 1, so the first letter is line 2).
//!
//! The deposit itself (validation against the database, sealing, storing, resuming after a
//! crash) lives in [`run`]; `recommande send` in [`send`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::letter::{DepositRequest, FieldError, field_error};

/// Most letters in one batch.
pub const MAX_LETTERS_PER_BATCH: usize = 10_000;
/// Largest batch body accepted: 10,000 letters of a few hundred bytes each, with room.
pub const MAX_BATCH_BODY: usize = 32 * 1024 * 1024;

/// What happens to the valid rows when some rows are invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchMode {
    /// Deposit the valid rows and report the invalid ones (the default).
    ValidRows,
    /// Deposit nothing when any row is invalid.
    AllOrNothing,
}

impl BatchMode {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchMode::ValidRows => "valid_rows",
            BatchMode::AllOrNothing => "all_or_nothing",
        }
    }

    /// Parses a stored or query-string name.
    pub fn parse(s: &str) -> Option<BatchMode> {
        [BatchMode::ValidRows, BatchMode::AllOrNothing]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// The format a batch arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchSource {
    /// `application/json`: `{"defaults":{…},"letters":[…]}`.
    Json,
    /// `text/csv`: a header row of column paths, one row per letter.
    Csv,
}

impl BatchSource {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchSource::Json => "json",
            BatchSource::Csv => "csv",
        }
    }
}

/// Lifecycle of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// Accepted; its letters are being deposited in the background.
    Depositing,
    /// Every row was deposited or rejected.
    Completed,
    /// `all_or_nothing` with at least one invalid row: nothing was deposited.
    Rejected,
    /// The deposit stopped on a system failure; the chunks committed before it stay
    /// deposited (each one whole, with its evidence and notifications), the rest was not.
    Failed,
    /// Cancelled by the sender (`POST /v1/batches/{id}/cancel`): the letters deposited before
    /// stay deposited, the remaining rows never will be.
    Cancelled,
}

impl BatchState {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Depositing => "depositing",
            BatchState::Completed => "completed",
            BatchState::Rejected => "rejected",
            BatchState::Failed => "failed",
            BatchState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<BatchState> {
        [
            BatchState::Depositing,
            BatchState::Completed,
            BatchState::Rejected,
            BatchState::Failed,
            BatchState::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether nothing more will happen to the batch.
    pub fn is_final(self) -> bool {
        self != BatchState::Depositing
    }
}

/// One invalid field of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RowError {
    /// CSV line number (header = 1) or JSON array index (from 0).
    pub row: i64,
    /// Path of the field in the letter (`recipient.email`), which is also the CSV column.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// One row of a batch, as the single-letter body it stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRow {
    /// CSV line number or JSON array index.
    pub row: i64,
    /// Exactly a `POST /v1/letters` body: defaults merged under the row's own values.
    pub letter: Value,
}

/// A batch body read into rows; the rows are not checked yet.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchInput {
    /// Format of the body.
    pub source: BatchSource,
    /// Mode asked for (body or query), if any.
    pub mode: Option<BatchMode>,
    /// The rows, in order.
    pub rows: Vec<BatchRow>,
    /// Rows that could not even become a letter body (e.g. a CSV row with too many cells).
    pub errors: Vec<RowError>,
}

/// Why a batch body cannot be read at all; nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchInputError {
    /// The body is not UTF-8.
    #[error("the body is not UTF-8: invalid byte at line {line}, byte offset {offset}")]
    NotUtf8 {
        /// Line of the first invalid byte (from 1).
        line: usize,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The JSON body is not valid JSON.
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The CSV body could not be read.
    #[error("the CSV body cannot be read: {0}")]
    MalformedCsv(String),
    /// The CSV body has no header row.
    #[error(
        "the CSV body has no header row: the first line must name the columns (e.g. recipient.name;recipient.email;recipient.kind)"
    )]
    NoHeader,
    /// The body has no letter.
    #[error("the batch has no letter")]
    Empty,
    /// More than [`MAX_LETTERS_PER_BATCH`] letters.
    #[error(
        "the batch has {count} letters; at most {MAX_LETTERS_PER_BATCH} are accepted per batch: split it"
    )]
    TooManyLetters {
        /// Letters in the body.
        count: usize,
    },
    /// Invalid envelope fields (unknown or duplicate columns, `defaults`, `mode`, …), all listed.
    #[error("the batch is not well-formed")]
    Fields(Vec<FieldError>),
}

/// A CSV column and the type of the value it fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// A JSON string (the cell, as written).
    Text,
    /// A list of strings separated by `|` (document ids).
    List,
    /// A JSON integer (amounts in cents).
    Integer,
    /// A JSON boolean: `true`/`false`, `1`/`0`, `oui`/`non`, `yes`/`no`, case-insensitive.
    Boolean,
}

/// The boolean a CSV cell spells, if any ([`ColumnType::Boolean`]).
pub fn parse_boolean(cell: &str) -> Option<bool> {
    match cell.trim().to_lowercase().as_str() {
        "true" | "1" | "oui" | "yes" | "vrai" => Some(true),
        "false" | "0" | "non" | "no" | "faux" => Some(false),
        _ => None,
    }
}

/// The message for a cell that is not a boolean.
const NOT_A_BOOLEAN: &str =
    "must be true or false (also accepted: 1/0, oui/non, yes/no, vrai/faux; any case)";

/// The columns a CSV batch may have: paths of the letter JSON with their types. `#` stands
/// for an array index (`compose.invoices.0.amount_cents`).
///
/// To accept a new letter field in CSV (e.g. the `compose` object of composed letters), add
/// its path here; [`DepositRequest::parse`] checks the value as for a single letter.
pub const COLUMNS: &[(&str, ColumnType)] = &[
    ("sender.name", ColumnType::Text),
    ("sender.email", ColumnType::Text),
    ("sender.organization", ColumnType::Text),
    ("recipient.name", ColumnType::Text),
    ("recipient.email", ColumnType::Text),
    ("recipient.kind", ColumnType::Text),
    ("recipient.consent_id", ColumnType::Text),
    ("reference", ColumnType::Text),
    ("documents", ColumnType::List),
    // Composed debt-collection letters (docs/COLLECTION.md), instead of `documents`.
    ("template_id", ColumnType::Text),
    ("compose.kind", ColumnType::Text),
    ("compose.creditor.name", ColumnType::Text),
    ("compose.creditor.address", ColumnType::Text),
    ("compose.creditor.siren", ColumnType::Text),
    ("compose.creditor.kind", ColumnType::Text),
    ("compose.creditor.city", ColumnType::Text),
    ("compose.creditor.merchant", ColumnType::Boolean),
    ("compose.agency.name", ColumnType::Text),
    ("compose.agency.address", ColumnType::Text),
    ("compose.agency.mandate_reference", ColumnType::Text),
    ("compose.agency.city", ColumnType::Text),
    ("compose.debtor.name", ColumnType::Text),
    ("compose.debtor.address", ColumnType::Text),
    ("compose.debtor.kind", ColumnType::Text),
    ("compose.debtor.merchant", ColumnType::Boolean),
    ("compose.debtor.insolvency.kind", ColumnType::Text),
    ("compose.debtor.insolvency.opened_on", ColumnType::Text),
    ("compose.invoices.#.number", ColumnType::Text),
    ("compose.invoices.#.issue_date", ColumnType::Text),
    ("compose.invoices.#.due_date", ColumnType::Text),
    ("compose.invoices.#.amount_cents", ColumnType::Integer),
    ("compose.invoices.#.paid_cents", ColumnType::Integer),
    ("compose.invoices.#.performed_on", ColumnType::Text),
    ("compose.invoices.#.acknowledged_on", ColumnType::Text),
    (
        "compose.invoices.#.prescription_from_due_date",
        ColumnType::Boolean,
    ),
    ("compose.invoices.#.payments.#.date", ColumnType::Text),
    (
        "compose.invoices.#.payments.#.amount_cents",
        ColumnType::Integer,
    ),
    ("compose.invoices.#.payments.#.imputation", ColumnType::Text),
    ("compose.deadline_days", ColumnType::Integer),
    ("compose.payment.link", ColumnType::Text),
    ("compose.payment.iban", ColumnType::Text),
    ("compose.payment.instructions", ColumnType::Text),
    ("compose.first_letter.reference", ColumnType::Text),
    ("compose.first_letter.date", ColumnType::Text),
    ("compose.first_letter.kind", ColumnType::Text),
    ("compose.prior_notices.#.kind", ColumnType::Text),
    ("compose.prior_notices.#.reference", ColumnType::Text),
    ("compose.prior_notices.#.date", ColumnType::Text),
    ("compose.prior_notices.#.invoices", ColumnType::List),
    ("compose.prior_notices.#.sent_by", ColumnType::Text),
    ("compose.contract_rate_percent", ColumnType::Text),
    ("compose.override_prescription", ColumnType::Boolean),
];

/// The single-letter body of one row: `defaults` merged under `row` (objects merge key by
/// key, recursively; any other value in the row replaces the default).
///
/// This is **the** place where a batch row becomes a letter. A row with a `compose` object
/// instead of `documents` goes through unchanged, so supporting composed letters in batches
/// needs nothing here: it needs [`DepositRequest::parse`] (shared with `POST /v1/letters`)
/// to accept `compose`, and [`COLUMNS`] to list the `compose.…` columns for CSV.
pub fn letter_body(defaults: Option<&Map<String, Value>>, row: Value) -> Value {
    match (defaults, row) {
        (Some(defaults), Value::Object(row)) => {
            let mut merged = defaults.clone();
            merge_into(&mut merged, row);
            Value::Object(merged)
        }
        (_, row) => row,
    }
}

/// Checks one row exactly as `POST /v1/letters` checks its body; the errors carry the row.
pub fn check_letter(row: &BatchRow) -> Result<DepositRequest, Vec<RowError>> {
    let to_row = |e: FieldError| RowError {
        row: row.row,
        field: e.field,
        message: e.message,
    };
    // The same agreement of recipient.kind and compose.debtor.kind as `POST /v1/letters`
    // (CPCE L.100: a consumer passed off as a professional would skip consent).
    let mismatch = crate::domain::collection::request::kind_mismatch(&row.letter);
    match (DepositRequest::parse(&row.letter), mismatch) {
        (Ok(request), None) => Ok(request),
        (Ok(_), Some(e)) => Err(vec![to_row(e)]),
        (Err(errors), mismatch) => Err(errors.into_iter().chain(mismatch).map(to_row).collect()),
    }
}

fn merge_into(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(b)), Value::Object(o)) => merge_into(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// The fields of a JSON `POST /v1/batches` body; any other is reported as unknown. The
/// OpenAPI schema `BatchBody` lists the same ones (checked by the tests of `http::openapi`).
pub const BATCH_FIELDS: &[&str] = &["defaults", "letters", "mode"];

/// Reads a JSON batch body: `{"defaults":{…},"letters":[…],"mode":"valid_rows"}`.
pub fn read_json(body: &[u8]) -> Result<BatchInput, BatchInputError> {
    let text = utf8(body)?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| BatchInputError::MalformedJson(e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(BatchInputError::Fields(vec![field_error(
            "",
            "the body must be a JSON object {\"defaults\":{…},\"letters\":[…]}",
        )]));
    };
    let mut errors = Vec::new();
    for key in obj.keys() {
        if !BATCH_FIELDS.contains(&key.as_str()) {
            errors.push(field_error(
                key,
                "is not a known field (expected defaults, letters, mode)",
            ));
        }
    }
    let defaults = match obj.remove("defaults") {
        None | Some(Value::Null) => None,
        Some(Value::Object(d)) => Some(d),
        Some(_) => {
            errors.push(field_error(
                "defaults",
                "must be an object: fields shared by every letter",
            ));
            None
        }
    };
    let mode = match obj.remove("mode") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) => match BatchMode::parse(&m) {
            Some(m) => Some(m),
            None => {
                errors.push(field_error("mode", "must be valid_rows or all_or_nothing"));
                None
            }
        },
        Some(_) => {
            errors.push(field_error("mode", "must be valid_rows or all_or_nothing"));
            None
        }
    };
    let letters = match obj.remove("letters") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => {
            errors.push(field_error(
                "letters",
                "is required: a list of letters, each a POST /v1/letters body",
            ));
            Vec::new()
        }
        Some(_) => {
            errors.push(field_error("letters", "must be a list of letters"));
            Vec::new()
        }
    };
    if !errors.is_empty() {
        return Err(BatchInputError::Fields(errors));
    }
    check_count(letters.len())?;
    let mut rows = Vec::with_capacity(letters.len());
    let mut row_errors = Vec::new();
    for (i, letter) in letters.into_iter().enumerate() {
        if !letter.is_object() {
            row_errors.push(RowError {
                row: i as i64,
                field: String::new(),
                message: "the letter must be a JSON object".into(),
            });
            continue;
        }
        rows.push(BatchRow {
            row: i as i64,
            letter: letter_body(defaults.as_ref(), letter),
        });
    }
    Ok(BatchInput {
        source: BatchSource::Json,
        mode,
        rows,
        errors: row_errors,
    })
}

/// Reads a CSV batch body (UTF-8, `;` or `,` separated, header row of [`COLUMNS`]);
/// `defaults` (from the query string or a template) are merged under each row.
pub fn read_csv(
    body: &[u8],
    defaults: Option<&Map<String, Value>>,
) -> Result<BatchInput, BatchInputError> {
    let text = utf8(body)?;
    // Spreadsheets often save UTF-8 with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let header_line = text.lines().next().unwrap_or("");
    if header_line.trim().is_empty() {
        return Err(BatchInputError::NoHeader);
    }
    let delimiter = if header_line.matches(';').count() > header_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| BatchInputError::MalformedCsv(e.to_string()))?
        .clone();
    let mut columns = Vec::with_capacity(header.len());
    let mut errors = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim();
        if name.is_empty() {
            errors.push(field_error(
                &format!("column {}", i + 1),
                "has no name in the header row",
            ));
            continue;
        }
        if columns.iter().any(|(n, _): &(String, _)| n == name) {
            errors.push(field_error(name, "is named twice in the header row"));
            continue;
        }
        match column_type(name) {
            Some(kind) => columns.push((name.to_string(), kind)),
            None => errors.push(field_error(name, "is not a known column")),
        }
    }
    // The known columns are listed once, whatever the number of unknown ones: a header of
    // 100,000 unknown columns must not make an answer of megabytes (issue 12 §2).
    if errors.iter().any(|e| e.message == "is not a known column") {
        errors.push(field_error(
            "header",
            &format!(
                "known columns: {}",
                COLUMNS
                    .iter()
                    .map(|(c, _)| *c)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(BatchInputError::Fields(errors));
    }
    // Line numbers from byte offsets: the reader neither counts the blank lines it skips nor
    // starts a record's position after them.
    let newlines: Vec<usize> = text.match_indices('\n').map(|(i, _)| i).collect();
    let mut rows = Vec::new();
    let mut row_errors = Vec::new();
    let mut count = 0;
    for record in reader.records() {
        let record = record.map_err(|e| BatchInputError::MalformedCsv(e.to_string()))?;
        let line = record
            .position()
            .map(|p| {
                let start = usize::try_from(p.byte())
                    .unwrap_or(usize::MAX)
                    .min(text.len());
                let blank = text.as_bytes()[start..]
                    .iter()
                    .take_while(|b| matches!(b, b'\n' | b'\r'))
                    .count();
                newlines.partition_point(|n| *n < start + blank) as i64 + 1
            })
            .unwrap_or(0);
        // A blank line ends nothing and deposits nothing.
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        count += 1;
        if count > MAX_LETTERS_PER_BATCH {
            // Count the rest to give the exact figure.
            let rest = reader.records().count();
            return Err(BatchInputError::TooManyLetters {
                count: count + rest,
            });
        }
        if record.len() != columns.len() {
            row_errors.push(RowError {
                row: line,
                field: String::new(),
                message: format!(
                    "has {} cells; the header has {} columns",
                    record.len(),
                    columns.len()
                ),
            });
            continue;
        }
        let mut letter = Map::new();
        let mut cell_errors = Vec::new();
        for ((name, kind), cell) in columns.iter().zip(record.iter()) {
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            let value = match kind {
                ColumnType::Text => Value::String(cell.to_string()),
                ColumnType::List => Value::Array(
                    cell.split('|')
                        .map(|s| Value::String(s.trim().to_string()))
                        .collect(),
                ),
                ColumnType::Integer => match cell.parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => {
                        cell_errors.push(RowError {
                            row: line,
                            field: name.clone(),
                            message: "must be a whole number".into(),
                        });
                        continue;
                    }
                },
                ColumnType::Boolean => match parse_boolean(cell) {
                    Some(b) => Value::Bool(b),
                    None => {
                        cell_errors.push(RowError {
                            row: line,
                            field: name.clone(),
                            message: format!("{cell:?} {NOT_A_BOOLEAN}"),
                        });
                        continue;
                    }
                },
            };
            set_path(&mut letter, name, value);
        }
        if !cell_errors.is_empty() {
            row_errors.extend(cell_errors);
            continue;
        }
        rows.push(BatchRow {
            row: line,
            letter: letter_body(defaults, Value::Object(letter)),
        });
    }
    check_count(count)?;
    Ok(BatchInput {
        source: BatchSource::Csv,
        mode: None,
        rows,
        errors: row_errors,
    })
}

/// Defaults for a CSV batch from query parameters named like columns
/// (`?sender.name=…&sender.email=…&documents=ID`); other parameters are the caller's.
pub fn defaults_from_query<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let mut defaults = Map::new();
    let mut errors = Vec::new();
    for (name, raw) in params {
        let Some(kind) = column_type(name) else {
            continue;
        };
        let value = match kind {
            ColumnType::Text => Value::String(raw.to_string()),
            ColumnType::List => Value::Array(
                raw.split('|')
                    .map(|s| Value::String(s.trim().to_string()))
                    .collect(),
            ),
            ColumnType::Integer => match raw.trim().parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    errors.push(field_error(name, "must be a whole number"));
                    continue;
                }
            },
            ColumnType::Boolean => match parse_boolean(raw) {
                Some(b) => Value::Bool(b),
                None => {
                    errors.push(field_error(name, &format!("{raw:?} {NOT_A_BOOLEAN}")));
                    continue;
                }
            },
        };
        set_path(&mut defaults, name, value);
    }
    if errors.is_empty() {
        Ok(defaults)
    } else {
        Err(errors)
    }
}

/// The type of column `name`, if it is one of [`COLUMNS`] (`#` matching an index).
pub fn column_type(name: &str) -> Option<ColumnType> {
    COLUMNS.iter().find_map(|(pattern, kind)| {
        let mut a = pattern.split('.');
        let mut b = name.split('.');
        loop {
            match (a.next(), b.next()) {
                (None, None) => return Some(*kind),
                (Some("#"), Some(seg))
                    if !seg.is_empty() && seg.bytes().all(|c| c.is_ascii_digit()) => {}
                (Some(p), Some(seg)) if p == seg => {}
                _ => return None,
            }
        }
    })
}

/// Sets `value` at dotted `path` in `obj`, creating objects (and arrays for numeric segments).
fn set_path(obj: &mut Map<String, Value>, path: &str, value: Value) {
    let segments: Vec<&str> = path.split('.').collect();
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    let slot = obj.entry(first.to_string()).or_insert(Value::Null);
    set_in(slot, rest, value);
}

fn set_in(slot: &mut Value, path: &[&str], value: Value) {
    let Some((segment, rest)) = path.split_first() else {
        *slot = value;
        return;
    };
    if let Ok(index) = segment.parse::<usize>() {
        if !slot.is_array() {
            *slot = Value::Array(Vec::new());
        }
        if let Value::Array(items) = slot {
            // An index far beyond the cells given is bounded by the column list itself.
            if items.len() <= index {
                items.resize(index + 1, Value::Null);
            }
            set_in(&mut items[index], rest, value);
        }
    } else {
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Value::Object(map) = slot {
            let next = map.entry(segment.to_string()).or_insert(Value::Null);
            set_in(next, rest, value);
        }
    }
}

fn check_count(count: usize) -> Result<(), BatchInputError> {
    if count == 0 {
        return Err(BatchInputError::Empty);
    }
    if count > MAX_LETTERS_PER_BATCH {
        return Err(BatchInputError::TooManyLetters { count });
    }
    Ok(())
}

fn utf8(body: &[u8]) -> Result<&str, BatchInputError> {
    std::str::from_utf8(body).map_err(|e| {
        let offset = e.valid_up_to();
        let line = body[..offset].iter().filter(|b| **b == b'\n').count() + 1;
        BatchInputError::NotUtf8 { line, offset }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every field a composed letter accepts in JSON has its CSV column: the field lists of
    /// the `compose` parser, walked object by object, each leaf found in [`COLUMNS`].
    #[test]
    fn every_compose_field_has_a_csv_column() {
        use crate::domain::collection::request as r;
        let objects: &[(&str, &[&str])] = &[
            ("compose", r::COMPOSE_FIELDS),
            ("compose.creditor", r::CREDITOR_FIELDS),
            ("compose.agency", r::AGENCY_FIELDS),
            ("compose.debtor", r::DEBTOR_FIELDS),
            ("compose.debtor.insolvency", r::INSOLVENCY_FIELDS),
            ("compose.invoices.#", r::INVOICE_FIELDS),
            ("compose.invoices.#.payments.#", r::DATED_PAYMENT_FIELDS),
            ("compose.prior_notices.#", r::PRIOR_NOTICE_FIELDS),
            ("compose.payment", r::PAYMENT_FIELDS),
            ("compose.first_letter", r::FIRST_LETTER_FIELDS),
        ];
        let mut missing = Vec::new();
        for (prefix, fields) in objects {
            for field in *fields {
                let path = format!("{prefix}.{field}");
                let nested = objects
                    .iter()
                    .any(|(p, _)| p.trim_end_matches(".#") == path);
                if !nested && !COLUMNS.iter().any(|(c, _)| *c == path) {
                    missing.push(path);
                }
            }
        }
        assert!(missing.is_empty(), "no CSV column for {missing:?}");
    }

    const DOC: &str = "0192f3a4-5b6c-7d8e-9f00-112233445566";

    #[test]
    fn a_json_row_becomes_the_single_letter_body_with_defaults_under_it() {
        let body = json!({
            "defaults": {"sender": {"name": "Cabinet", "email": "envoi@cabinet.fr"}, "documents": [DOC]},
            "letters": [
                {"recipient": {"name": "A", "email": "a@a.fr", "kind": "professional"}},
                {"recipient": {"name": "B", "email": "b@b.fr", "kind": "professional"},
                 "sender": {"name": "Autre"}}
            ]
        });
        let input = read_json(body.to_string().as_bytes()).expect("reads");
        assert_eq!(input.rows.len(), 2);
        assert_eq!(input.rows[0].letter["sender"]["email"], "envoi@cabinet.fr");
        assert_eq!(input.rows[1].letter["sender"]["name"], "Autre");
        assert_eq!(input.rows[1].letter["sender"]["email"], "envoi@cabinet.fr");
        assert_eq!(input.rows[1].row, 1);
        assert!(check_letter(&input.rows[0]).is_ok());
    }

    #[test]
    fn csv_rows_are_typed_by_their_column_and_numbered_by_line() {
        for sep in [";", ","] {
            let csv = format!(
                "recipient.name{sep}recipient.email{sep}recipient.kind{sep}documents\n\
                 \"Dupont{sep} SARL\"{sep}a@a.fr{sep}professional{sep}{DOC}|{DOC}\n\
                 \n\
                 B{sep}not-an-email{sep}robot{sep}{DOC}\n"
            );
            let mut defaults = Map::new();
            defaults.insert(
                "sender".into(),
                json!({"name": "Cabinet", "email": "envoi@cabinet.fr"}),
            );
            let input = read_csv(csv.as_bytes(), Some(&defaults)).expect("reads");
            assert_eq!(input.rows.len(), 2, "{sep}");
            assert_eq!(input.rows[0].row, 2);
            assert_eq!(input.rows[1].row, 4, "blank lines keep the numbering");
            assert_eq!(
                input.rows[0].letter["recipient"]["name"],
                format!("Dupont{sep} SARL")
            );
            assert_eq!(input.rows[0].letter["documents"], json!([DOC, DOC]));
            let errors = check_letter(&input.rows[1]).expect_err("invalid");
            let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
            assert!(fields.contains(&"recipient.email"), "{fields:?}");
            assert!(fields.contains(&"recipient.kind"), "{fields:?}");
            assert!(errors.iter().all(|e| e.row == 4));
        }
    }

    #[test]
    fn csv_columns_carry_dated_payments_and_prior_notices() {
        let csv = "recipient.name;compose.invoices.0.number;compose.invoices.0.payments.0.date;compose.invoices.0.payments.0.amount_cents;compose.invoices.0.payments.1.date;compose.invoices.0.payments.1.amount_cents;compose.invoices.0.payments.1.imputation;compose.prior_notices.0.kind;compose.prior_notices.0.invoices\n\
                   A;F-1;2026-03-01;1200;2026-04-01;300;principal;mise_en_demeure;F-1|F-2\n";
        let input = read_csv(csv.as_bytes(), None).expect("reads");
        assert!(input.errors.is_empty(), "{:?}", input.errors);
        let compose = &input.rows[0].letter["compose"];
        assert_eq!(
            compose["invoices"][0]["payments"],
            json!([
                {"date": "2026-03-01", "amount_cents": 1200},
                {"date": "2026-04-01", "amount_cents": 300, "imputation": "principal"}
            ])
        );
        assert_eq!(
            compose["prior_notices"],
            json!([{"kind": "mise_en_demeure", "invoices": ["F-1", "F-2"]}])
        );
    }

    #[test]
    fn the_city_of_the_place_and_date_line_has_its_columns() {
        let csv = "recipient.name;compose.creditor.city;compose.agency.city\nA;Lyon;Grenoble\n";
        let input = read_csv(csv.as_bytes(), None).expect("reads");
        assert!(input.errors.is_empty(), "{:?}", input.errors);
        let compose = &input.rows[0].letter["compose"];
        assert_eq!(compose["creditor"]["city"], "Lyon");
        assert_eq!(compose["agency"]["city"], "Grenoble");
    }

    #[test]
    fn boolean_columns_accept_the_usual_spellings_and_name_the_bad_cell() {
        let csv = "recipient.name;compose.override_prescription\n\
                   A;true\nB;OUI\nC;0\nD;Non\nE;peut-être\nF;YES\n";
        let input = read_csv(csv.as_bytes(), None).expect("reads");
        let values: Vec<(i64, &Value)> = input
            .rows
            .iter()
            .map(|r| (r.row, &r.letter["compose"]["override_prescription"]))
            .collect();
        assert_eq!(
            values,
            [
                (2, &json!(true)),
                (3, &json!(true)),
                (4, &json!(false)),
                (5, &json!(false)),
                (7, &json!(true))
            ]
        );
        assert_eq!(input.errors.len(), 1, "{:?}", input.errors);
        let error = &input.errors[0];
        assert_eq!(error.row, 6);
        assert_eq!(error.field, "compose.override_prescription");
        assert!(
            error
                .message
                .starts_with("\"peut-être\" must be true or false"),
            "{}",
            error.message
        );
        let refused = defaults_from_query([("compose.override_prescription", "maybe")])
            .expect_err("not a boolean");
        assert_eq!(refused[0].field, "compose.override_prescription");
        assert_eq!(
            defaults_from_query([("compose.override_prescription", "Oui")]).expect("ok")["compose"]
                ["override_prescription"],
            json!(true)
        );
        for (parsed, expected) in [
            ("True", Some(true)),
            ("1", Some(true)),
            ("no", Some(false)),
            ("2", None),
            ("", None),
        ] {
            assert_eq!(parse_boolean(parsed), expected, "{parsed}");
        }
    }

    #[test]
    fn a_row_whose_debtor_and_recipient_kinds_differ_is_refused_naming_the_debtor_kind() {
        let row = BatchRow {
            row: 7,
            letter: json!({
                "sender": {"name": "Cabinet Recouvr", "email": "envoi@recouvr.fr"},
                "recipient": {"name": "Jean Martin", "email": "jean@exemple.fr", "kind": "professional"},
                "documents": ["0192f3a4-5b6c-7d8e-9f00-112233445566"],
                "compose": {"debtor": {"kind": "consumer"}}
            }),
        };
        let errors = check_letter(&row).expect_err("refused");
        let mismatch = errors
            .iter()
            .find(|e| e.field == "compose.debtor.kind")
            .expect("the kind mismatch is named");
        assert_eq!(mismatch.row, 7);
        assert!(
            mismatch.message.contains("recipient.kind"),
            "{}",
            mismatch.message
        );
    }

    #[test]
    fn unknown_duplicate_and_missing_columns_are_named() {
        let err =
            read_csv(b"recipient.name;colour;recipient.name\nA;b;c\n", None).expect_err("refused");
        let BatchInputError::Fields(errors) = err else {
            panic!("{err:?}");
        };
        assert_eq!(errors.len(), 3);
        assert_eq!(errors[0].field, "colour");
        assert!(errors[1].message.contains("twice"));
        assert_eq!(errors[2].field, "header");
        assert!(errors[2].message.starts_with("known columns: "));
        assert_eq!(read_csv(b"", None), Err(BatchInputError::NoHeader));
        assert_eq!(
            read_csv(b"recipient.name\n", None),
            Err(BatchInputError::Empty)
        );
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused_with_its_position() {
        let err = read_csv(b"recipient.name\nD\xe9biteur\n", None).expect_err("latin-1");
        assert_eq!(
            err,
            BatchInputError::NotUtf8 {
                line: 2,
                offset: 16
            }
        );
    }

    #[test]
    fn more_than_ten_thousand_letters_are_refused_with_the_count() {
        let mut csv = String::from("recipient.name\n");
        for i in 0..=MAX_LETTERS_PER_BATCH {
            csv.push_str(&format!("D{i}\n"));
        }
        assert_eq!(
            read_csv(csv.as_bytes(), None),
            Err(BatchInputError::TooManyLetters { count: 10_001 })
        );
    }

    #[test]
    fn indexed_columns_build_arrays() {
        assert_eq!(column_type("documents"), Some(ColumnType::List));
        assert_eq!(column_type("documents.x"), None);
        let mut obj = Map::new();
        set_path(&mut obj, "compose.invoices.1.amount_cents", json!(12));
        assert_eq!(
            Value::Object(obj),
            json!({"compose": {"invoices": [null, {"amount_cents": 12}]}})
        );
    }
}
