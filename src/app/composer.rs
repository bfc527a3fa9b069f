//! Composed debt-collection letters at the edge: the `compose` object of a deposit is checked
//! by the pure [`crate::domain::collection`] core (amounts, rates, prescription, mandatory mentions),
//! written with the account's template wording when one is named, rendered as a PDF/A
//! document, stored in the content store like an upload, and its summary recorded in the
//! proof of deposit. The letter is dated the day of the deposit in Europe/Paris.

use std::sync::Arc;

use serde_json::Value;
use time::Date;

use crate::app::api_key::Caller;
use crate::app::deposit::DepositError;
use crate::core::clock::{Clock, unix_micros};
use crate::domain::collection::{
    ComposeRequest, ComposedLetter, RatesTable, Wording, write_letter,
};
use crate::domain::letter::{DepositRequest, FieldError, field_error};
use crate::infra::content::{ContentStore, PendingContent};
use crate::infra::storage::{DocumentRow, Storage};

/// Largest composed PDF stored (a letter of 100 invoices stays far below).
const MAX_COMPOSED_PDF: u64 = 16 * 1024 * 1024;

/// A checked and written letter, ready to render.
#[derive(Debug, Clone)]
pub struct Composed {
    /// The computation.
    pub composition: crate::domain::collection::Composition,
    /// The written letter.
    pub letter: ComposedLetter,
}

/// The composer service.
#[derive(Clone)]
pub struct Composer {
    storage: Storage,
    content: ContentStore,
    rates: Arc<RatesTable>,
    clock: Arc<dyn Clock>,
}

impl Composer {
    /// The rates table letters are composed with (`/metrics` shows its newest half-year).
    pub fn rates(&self) -> &RatesTable {
        &self.rates
    }

    /// A composer using `rates`.
    pub fn new(
        storage: Storage,
        content: ContentStore,
        rates: Arc<RatesTable>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Composer {
            storage,
            content,
            rates,
            clock,
        }
    }

    /// Today's date in Europe/Paris: the date of letters composed now.
    pub fn letter_date(&self) -> Date {
        let now = self.clock.now();
        crate::domain::window::paris_date(now).unwrap_or(now.date())
    }

    /// The wording of the account's template `id` for a letter of `kind`.
    pub async fn wording(
        &self,
        caller: &Caller,
        id: &str,
        kind: Option<&str>,
    ) -> Result<Wording, Vec<FieldError>> {
        let row = self
            .storage
            .template(&caller.tenant_id, id)
            .await
            .map_err(|e| vec![field_error("template_id", &format!("cannot be read: {e}"))])?
            .ok_or_else(|| {
                vec![field_error(
                    "template_id",
                    &format!("no template {id} for this account"),
                )]
            })?;
        if let Some(kind) = kind
            && kind != row.kind
        {
            return Err(vec![field_error(
                "template_id",
                &format!("is a template for a {}, not a {kind}", row.kind),
            )]);
        }
        Wording::parse(&row.wording, "template_id")
    }

    /// Checks a `compose` object and writes the letter (pure; no I/O).
    pub fn check(
        &self,
        compose: &Value,
        wording: Option<&Wording>,
        date: Date,
    ) -> Result<Composed, Vec<FieldError>> {
        let composition = ComposeRequest::parse(compose, date, &self.rates)?;
        let letter = write_letter(&composition, wording)?;
        Ok(Composed {
            composition,
            letter,
        })
    }

    /// Renders the letter, stores its PDF as a document of the account, and fills the
    /// request's documents and collection summary with it.
    pub async fn store(
        &self,
        caller: &Caller,
        composed: &Composed,
        request: &mut DepositRequest,
    ) -> Result<DocumentRow, DepositError> {
        let author = request
            .sender
            .organization
            .clone()
            .unwrap_or_else(|| request.sender.name.clone());
        let now = self.clock.now();
        let composed = composed.clone();
        let (pdf, summary_json, kind) =
            tokio::task::spawn_blocking(move || render_one(&composed, &author, now))
                .await
                .map_err(|e| DepositError::Composition(format!("rendering stopped: {e}")))??;
        let document = self.store_pdf(caller, &pdf, kind).await?;
        request.document_ids = vec![document.id.clone()];
        request.collection = Some(summary_json);
        Ok(document)
    }

    /// Checks, writes and renders many letters on `threads` blocking threads, each PDF
    /// encrypted into a temporary file on the thread that rendered it and then dropped (a
    /// chunk's PDFs are never all in memory). Returns, in order, each letter's rendering or
    /// the reasons it no longer composes. The files are placed by [`Composer::place_many`].
    pub async fn render_many(
        &self,
        letters: Vec<ToCompose>,
        threads: usize,
    ) -> Result<Vec<Result<Rendered, Vec<FieldError>>>, DepositError> {
        let now = self.clock.now();
        let date = self.letter_date();
        let count = letters.len();
        // Twice as many tasks as threads, so that one renders while another writes.
        let tasks_wanted = threads.max(1) * 2;
        let chunk_size = count.div_ceil(tasks_wanted).max(1);
        let mut tasks = Vec::new();
        let mut rest = letters;
        while !rest.is_empty() {
            let tail = rest.split_off(chunk_size.min(rest.len()));
            let chunk = std::mem::replace(&mut rest, tail);
            let composer = self.clone();
            tasks.push(tokio::task::spawn_blocking(move || {
                let mut done = Vec::with_capacity(chunk.len());
                for letter in chunk {
                    let composed =
                        match composer.check(&letter.compose, letter.wording.as_ref(), date) {
                            Ok(composed) => composed,
                            Err(errors) => {
                                done.push(Err(errors));
                                continue;
                            }
                        };
                    let written = render_one(&composed, &letter.author, now).and_then(
                        |(pdf, summary, kind)| {
                            let pending = composer.content.write_pending(&pdf, MAX_COMPOSED_PDF)?;
                            Ok(Rendered {
                                pending,
                                summary,
                                kind,
                            })
                        },
                    );
                    match written {
                        Ok(w) => done.push(Ok(w)),
                        Err(e) => {
                            discard(done);
                            return Err(e);
                        }
                    }
                }
                Ok(done)
            }));
        }
        let mut rendered = Vec::with_capacity(count);
        let mut failure = None;
        for task in tasks {
            match task.await {
                Ok(Ok(done)) => rendered.extend(done),
                Ok(Err(e)) => failure = Some(e),
                Err(e) => {
                    failure = Some(DepositError::Composition(format!("rendering stopped: {e}")))
                }
            }
        }
        if let Some(e) = failure {
            discard(rendered);
            return Err(e);
        }
        Ok(rendered)
    }

    /// Places rendered letters in the content store (flushed, then their keys recorded in
    /// one transaction, then moved into place) and records them as documents of the
    /// account. Returns, in order, each letter's document and composition summary.
    pub async fn place_many(
        &self,
        caller: &Caller,
        rendered: Vec<Rendered>,
    ) -> Result<Vec<(DocumentRow, Value)>, DepositError> {
        let mut meta = Vec::with_capacity(rendered.len());
        let mut pending = Vec::with_capacity(rendered.len());
        for r in rendered {
            pending.push(r.pending);
            meta.push((r.summary, r.kind));
        }
        let stored = self.content.place_many(pending).await?;
        let created_at = unix_micros(self.clock.now());
        let candidates: Vec<DocumentRow> = stored
            .iter()
            .zip(&meta)
            .map(|(stored, (_, kind))| composed_document(caller, stored, kind, created_at))
            .collect();
        let documents = self.storage.insert_documents(&candidates).await?;
        Ok(documents
            .into_iter()
            .zip(meta)
            .map(|(document, (summary, _))| (document, summary))
            .collect())
    }

    async fn store_pdf(
        &self,
        caller: &Caller,
        pdf: &[u8],
        kind: &str,
    ) -> Result<DocumentRow, DepositError> {
        let mut incoming = self.content.begin(MAX_COMPOSED_PDF).await?;
        incoming.write(pdf).await?;
        let stored = incoming.finish().await?;
        self.document_row(caller, &stored, kind).await
    }

    /// Records a stored PDF as a document of the account (the existing row when the same
    /// bytes were already recorded).
    async fn document_row(
        &self,
        caller: &Caller,
        stored: &crate::infra::content::StoredContent,
        kind: &str,
    ) -> Result<DocumentRow, DepositError> {
        let candidate = composed_document(caller, stored, kind, unix_micros(self.clock.now()));
        Ok(self.storage.insert_document(&candidate).await?)
    }
}

/// The document row of a stored composed letter of `kind`.
fn composed_document(
    caller: &Caller,
    stored: &crate::infra::content::StoredContent,
    kind: &str,
    created_at: i64,
) -> DocumentRow {
    DocumentRow {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: caller.tenant_id.clone(),
        sha256: stored.sha256.clone(),
        size: stored.size as i64,
        media_type: "application/pdf".into(),
        filename: format!("{kind}-{}.pdf", &stored.sha256[..12]),
        created_at,
    }
}

/// A letter of a batch to compose: its `compose` object, the wording of its template, and
/// the author written in the PDF's metadata.
#[derive(Debug, Clone)]
pub struct ToCompose {
    /// The `compose` object of the letter.
    pub compose: Value,
    /// The wording of the template it names, if any.
    pub wording: Option<Wording>,
    /// The sender's organisation or name.
    pub author: String,
}

/// A letter rendered and encrypted into a temporary file, not placed yet.
pub struct Rendered {
    pending: PendingContent,
    summary: Value,
    kind: &'static str,
}

impl Rendered {
    /// Removes the temporary file of a letter that will not be placed.
    pub fn discard(self) {
        self.pending.discard();
    }
}

/// Removes the temporary files of rendered letters that will not be placed.
pub fn discard(rendered: Vec<Result<Rendered, Vec<FieldError>>>) {
    for r in rendered.into_iter().flatten() {
        r.discard();
    }
}

/// Renders one letter: its PDF, its summary (JSON) and its kind.
fn render_one(
    composed: &Composed,
    author: &str,
    now: time::OffsetDateTime,
) -> Result<(Vec<u8>, Value, &'static str), DepositError> {
    let summary = composed.letter.summary(&composed.composition);
    let mut summary_json =
        serde_json::to_value(&summary).map_err(|e| DepositError::Composition(e.to_string()))?;
    // The payment link is offered on the recipient's page once the letter is accepted.
    if let (Some(link), Some(obj)) = (
        composed.composition.request.payment.link.as_ref(),
        summary_json.as_object_mut(),
    ) {
        obj.insert(
            "payment_link".into(),
            Value::String(link.as_str().to_string()),
        );
    }
    let summary_bytes = crate::core::canonical::value_to_vec(&summary_json)
        .map_err(|e| DepositError::Composition(e.to_string()))?;
    let kind = composed.composition.request.kind;
    let title = match kind {
        crate::domain::collection::LetterKind::Relance => "Relance",
        crate::domain::collection::LetterKind::MiseEnDemeure => "Mise en demeure",
    };
    let pdf = crate::domain::collection::pdf::render(
        &composed.letter,
        title,
        author,
        now,
        &summary_bytes,
    )
    .map_err(DepositError::Composition)?;
    Ok((pdf, summary_json, kind.as_str()))
}
