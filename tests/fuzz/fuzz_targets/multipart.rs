//! `POST /v1/documents` reads a multipart/form-data body (RFC 7578) from any API caller. The
//! target drives axum's `Multipart` extractor over an in-memory request exactly as the upload
//! handler does: every field's name and file name, its chunks, the file-name cleaning and
//! the `%PDF-` sniffing of the first bytes and the structural PDF check of every byte.
//! Errors are answers; a panic is a bug.
#![no_main]

use axum::body::Body;
use axum::extract::{FromRequest, Multipart};
use axum::http::{Request, header};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The boundary the seeds use; the fuzzer mutates everything else, header lines included.
const BOUNDARY: &str = "recommande-fuzz";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("a current-thread runtime needs no resources: {e}"))
    })
}

async fn read_upload(data: Vec<u8>) {
    let Ok(request) = Request::builder()
        .method("POST")
        .uri("/v1/documents")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from(data))
    else {
        return;
    };
    let Ok(mut multipart) = Multipart::from_request(request, &()).await else {
        return;
    };
    while let Ok(Some(mut field)) = multipart.next_field().await {
        let _ = field.name().map(str::len);
        let _ = recommande::http::documents::clean_filename(field.file_name());
        let mut head = Vec::new();
        let mut pdf = recommande::core::pdf_check::PdfCheck::new();
        while let Ok(Some(chunk)) = field.chunk().await {
            pdf.feed(&chunk);
            if head.len() < 1024 {
                head.extend_from_slice(&chunk[..chunk.len().min(1024 - head.len())]);
            }
        }
        let _ = recommande::infra::content::sniff_media_type(&head);
        let _ = pdf.finish();
    }
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(read_upload(data.to_vec()));
});
