//! The transparency log's public endpoints (no authentication: they reveal only hashes):
//! signed tree heads, inclusion proofs and consistency proofs (RFC 9162 §2.1).

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::problem::Problem;
use crate::app::log::LogError;
use crate::app::service::Service;
use crate::core::log::{ConsistencyProof, InclusionProof, PublishedTreeHead};
use crate::domain::letter::FieldError;

impl From<LogError> for Problem {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Storage(e) => e.into(),
            LogError::OutOfRange(detail) => Problem::not_found(detail),
            LogError::Seal(_) | LogError::Canonical(_) => Problem::internal(&e),
        }
    }
}

/// The latest signed tree head.
#[utoipa::path(get, path = "/v1/log/tree-heads/latest", tag = "log",
    responses((status = 200, description = "The latest signed tree head", body = PublishedTreeHead),
              (status = 404, description = "No tree head yet (empty log)", body = Problem)))]
pub async fn latest_head(
    State(service): State<Service>,
) -> Result<Json<PublishedTreeHead>, Problem> {
    let head = service
        .storage
        .latest_tree_head()
        .await?
        .ok_or_else(|| Problem::not_found("the log has no tree head yet"))?;
    Ok(Json(PublishedTreeHead::from_row(&head)))
}

/// The signed tree head of exactly `size` leaves.
#[utoipa::path(get, path = "/v1/log/tree-heads/{size}", tag = "log",
    params(("size" = u64, Path, description = "Tree size")),
    responses((status = 200, description = "The signed tree head of that size", body = PublishedTreeHead),
              (status = 400, description = "The size is not a whole number", body = Problem),
              (status = 404, description = "No tree head was issued for that size", body = Problem)))]
pub async fn head_of_size(
    State(service): State<Service>,
    Path(size): Path<String>,
) -> Result<Json<PublishedTreeHead>, Problem> {
    let size = parse_size("size", &size).map_err(|e| Problem::invalid_query(vec![e]))?;
    let head = service
        .storage
        .tree_head(size as i64)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no tree head was issued for size {size}")))?;
    Ok(Json(PublishedTreeHead::from_row(&head)))
}

/// Query of an inclusion proof.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// Hex SHA-256 of the evidence record.
    pub leaf: Option<String>,
    /// Tree size (a tree head's); default: the latest tree head's.
    pub size: Option<String>,
}

/// The inclusion proof of an evidence record (by its SHA-256) in the tree of `size` leaves.
#[utoipa::path(get, path = "/v1/log/proofs/inclusion", tag = "log",
    params(InclusionQuery),
    responses((status = 200, description = "The audit path", body = InclusionProof),
              (status = 400, description = "Bad parameters", body = Problem),
              (status = 404, description = "Record not in the log yet, or size beyond the log", body = Problem)))]
pub async fn inclusion(
    State(service): State<Service>,
    Query(query): Query<InclusionQuery>,
) -> Result<Json<InclusionProof>, Problem> {
    let mut errors = Vec::new();
    let leaf = match query.leaf.as_deref().map(str::to_ascii_lowercase) {
        Some(l) if l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()) => Some(l),
        Some(_) => {
            errors.push(field(
                "leaf",
                "must be the 64 hex digits of an evidence record's SHA-256",
            ));
            None
        }
        None => {
            errors.push(field("leaf", "required: the SHA-256 of an evidence record"));
            None
        }
    };
    let size = match query.size.as_deref().map(|s| parse_size("size", s)) {
        Some(Ok(size)) => Some(size),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
        None => None,
    };
    let Some(leaf) = leaf else {
        return Err(Problem::invalid_query(errors));
    };
    if !errors.is_empty() {
        return Err(Problem::invalid_query(errors));
    }
    let size = match size {
        Some(size) => size,
        None => service
            .storage
            .latest_tree_head()
            .await?
            .map(|h| h.tree_size.max(0) as u64)
            .ok_or_else(|| Problem::not_found("the log has no tree head yet"))?,
    };
    Ok(Json(service.log.inclusion(&leaf, size).await?))
}

/// Query of a consistency proof.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// Size of the older tree.
    pub from: Option<String>,
    /// Size of the newer tree.
    pub to: Option<String>,
}

/// The consistency proof between the trees of `from` and `to` leaves: shows the older tree
/// is a prefix of the newer one (nothing was changed or removed, only appended).
#[utoipa::path(get, path = "/v1/log/proofs/consistency", tag = "log",
    params(ConsistencyQuery),
    responses((status = 200, description = "The consistency proof", body = ConsistencyProof),
              (status = 400, description = "Bad parameters", body = Problem),
              (status = 404, description = "Sizes beyond the log", body = Problem)))]
pub async fn consistency(
    State(service): State<Service>,
    Query(query): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, Problem> {
    let mut errors = Vec::new();
    let mut get = |name: &str, value: &Option<String>| match value.as_deref() {
        Some(v) => parse_size(name, v).map_err(|e| errors.push(e)).ok(),
        None => {
            errors.push(field(name, "required: a tree size"));
            None
        }
    };
    let (from, to) = (get("from", &query.from), get("to", &query.to));
    let (Some(from), Some(to)) = (from, to) else {
        return Err(Problem::invalid_query(errors));
    };
    if from == 0 || from > to {
        return Err(Problem::invalid_query(vec![field(
            "from",
            "must satisfy 0 < from ≤ to",
        )]));
    }
    Ok(Json(service.log.consistency(from, to).await?))
}

fn parse_size(name: &str, value: &str) -> Result<u64, FieldError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|v| *v < (1u64 << 53))
        .ok_or_else(|| field(name, "must be a non-negative integer"))
}

fn field(name: &str, message: &str) -> FieldError {
    FieldError {
        field: name.to_string(),
        message: message.to_string(),
    }
}
