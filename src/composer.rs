//! Composed debt-collection letters at the edge: the `compose` object of a deposit is checked
//! by the pure [`crate::collection`] core (amounts, rates, prescription, mandatory mentions),
//! written with the account's template wording when one is named, rendered as a PDF/A
//! document, stored in the content store like an upload, and its summary recorded in the
//! proof of deposit. The letter is dated the day of the deposit in Europe/Paris.

use std::sync::Arc;

use serde_json::Value;
use time::Date;

use crate::api_key::Caller;
use crate::clock::{Clock, unix_micros};
use crate::collection::{ComposeRequest, ComposedLetter, RatesTable, Wording, write_letter};
use crate::content::ContentStore;
use crate::deposit::DepositError;
use crate::letter::{DepositRequest, FieldError, field_error};
use crate::storage::{DocumentRow, Storage};

/// Largest composed PDF stored (a letter of 100 invoices stays far below).
const MAX_COMPOSED_PDF: u64 = 16 * 1024 * 1024;
/// Composed PDFs written to the content store at once in a batch.
const STORE_CONCURRENCY: usize = 32;

/// A checked and written letter, ready to render.
#[derive(Debug, Clone)]
pub struct Composed {
    /// The computation.
    pub composition: crate::collection::Composition,
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
        crate::window::paris_date(now).unwrap_or(now.date())
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

    /// Renders many letters on `threads` blocking threads and stores their PDFs; returns,
    /// in order, each letter's document and composition summary.
    pub async fn store_many(
        &self,
        caller: &Caller,
        letters: Vec<(Composed, String)>,
        threads: usize,
    ) -> Result<Vec<(DocumentRow, Value)>, DepositError> {
        let now = self.clock.now();
        let started = std::time::Instant::now();
        let count = letters.len();
        let chunk_size = letters.len().div_ceil(threads.max(1)).max(1);
        let mut tasks = Vec::new();
        let mut rest = letters;
        while !rest.is_empty() {
            let tail = rest.split_off(chunk_size.min(rest.len()));
            let chunk = std::mem::replace(&mut rest, tail);
            tasks.push(tokio::task::spawn_blocking(
                move || -> Result<Vec<Rendered>, DepositError> {
                    chunk
                        .into_iter()
                        .map(|(composed, author)| render_one(&composed, &author, now))
                        .collect()
                },
            ));
        }
        let mut rendered = Vec::new();
        for task in tasks {
            rendered.extend(
                task.await
                    .map_err(|e| DepositError::Composition(format!("rendering stopped: {e}")))??,
            );
        }
        let rendered_in = started.elapsed();
        // Each file is flushed to disk before it is named (content.rs); flushing many at
        // once lets the file system group them, which a one-by-one loop cannot.
        let mut files = tokio::task::JoinSet::new();
        let mut written = vec![None; rendered.len()];
        let mut meta = Vec::with_capacity(rendered.len());
        let mut pdfs = Vec::with_capacity(rendered.len());
        for (pdf, summary, kind) in rendered {
            pdfs.push(pdf);
            meta.push((summary, kind));
        }
        // Each PDF moves into its writing task and is freed once stored.
        let mut pending = pdfs.into_iter().enumerate();
        loop {
            while files.len() < STORE_CONCURRENCY {
                let Some((i, pdf)) = pending.next() else {
                    break;
                };
                let content = self.content.clone();
                files.spawn(async move {
                    let mut incoming = content.begin(MAX_COMPOSED_PDF).await?;
                    incoming.write(&pdf).await?;
                    incoming.finish().await.map(|stored| (i, stored))
                });
            }
            let Some(done) = files.join_next().await else {
                break;
            };
            let (i, stored) =
                done.map_err(|e| DepositError::Composition(format!("storing stopped: {e}")))??;
            written[i] = Some(stored);
        }
        let mut out = Vec::with_capacity(meta.len());
        for ((summary, kind), stored) in meta.into_iter().zip(written) {
            let stored = stored.ok_or_else(|| {
                DepositError::Composition("a composed letter was not stored".into())
            })?;
            let document = self.document_row(caller, &stored, kind).await?;
            out.push((document, summary));
        }
        tracing::debug!(
            letters = count,
            render_seconds = rendered_in.as_secs_f64(),
            total_seconds = started.elapsed().as_secs_f64(),
            "composed letters rendered and stored"
        );
        Ok(out)
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
        stored: &crate::content::StoredContent,
        kind: &str,
    ) -> Result<DocumentRow, DepositError> {
        let candidate = DocumentRow {
            id: uuid::Uuid::now_v7().to_string(),
            tenant_id: caller.tenant_id.clone(),
            sha256: stored.sha256.clone(),
            size: stored.size as i64,
            media_type: "application/pdf".into(),
            filename: format!("{kind}-{}.pdf", &stored.sha256[..12]),
            created_at: unix_micros(self.clock.now()),
        };
        Ok(self.storage.insert_document(&candidate).await?)
    }
}

/// A rendered letter: its PDF, its summary (JSON) and its kind.
type Rendered = (Vec<u8>, Value, &'static str);

/// Renders one letter.
fn render_one(
    composed: &Composed,
    author: &str,
    now: time::OffsetDateTime,
) -> Result<Rendered, DepositError> {
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
    let summary_bytes = serde_json_canonicalizer::to_vec(&summary_json)
        .map_err(|e| DepositError::Composition(e.to_string()))?;
    let kind = composed.composition.request.kind;
    let title = match kind {
        crate::collection::LetterKind::Relance => "Relance",
        crate::collection::LetterKind::MiseEnDemeure => "Mise en demeure",
    };
    let pdf = crate::collection::pdf::render(&composed.letter, title, author, now, &summary_bytes)
        .map_err(DepositError::Composition)?;
    Ok((pdf, summary_json, kind.as_str()))
}
