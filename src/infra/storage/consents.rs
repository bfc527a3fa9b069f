//! Consumer consents (CPCE L.100): recorded once, withdrawn at most once, never erased.
//!
//! This module offers insert, read and withdraw — nothing that deletes a row or changes a
//! consent other than by withdrawing it; the 0003 migration adds triggers that refuse
//! anything else at the database level, whatever the caller (0018 extends them to `sender`).

use sqlx::QueryBuilder;

use super::{IdempotencyRow, Storage, StorageError};

pub use crate::domain::consent::ConsentRow;

/// Filters for listing consents; results are ordered by id (creation time).
#[derive(Debug, Clone, Default)]
pub struct ConsentFilter {
    /// Only consents for this (normalised) address.
    pub email: Option<String>,
    /// Only consents whose id sorts after this one (cursor).
    pub after_id: Option<String>,
    /// At most this many.
    pub limit: i64,
}

macro_rules! consent_columns {
    () => {
        "id, tenant_id, email, name, given_at, method, document_id, created_at, withdrawn_at, withdrawal_reason, sender"
    };
}

/// A `consents` row as read: [`ConsentRow`] stays free of sqlx traits.
#[derive(sqlx::FromRow)]
struct ConsentRecord {
    id: String,
    tenant_id: String,
    email: String,
    name: String,
    given_at: i64,
    method: String,
    document_id: Option<String>,
    created_at: i64,
    withdrawn_at: Option<i64>,
    withdrawal_reason: Option<String>,
    sender: Option<String>,
}

impl From<ConsentRecord> for ConsentRow {
    fn from(r: ConsentRecord) -> Self {
        ConsentRow {
            id: r.id,
            tenant_id: r.tenant_id,
            email: r.email,
            name: r.name,
            given_at: r.given_at,
            method: r.method,
            document_id: r.document_id,
            created_at: r.created_at,
            withdrawn_at: r.withdrawn_at,
            withdrawal_reason: r.withdrawal_reason,
            sender: r.sender,
        }
    }
}

impl Storage {
    /// Records a consent and the optional idempotency record in one transaction. An
    /// claim this request no longer holds yields `IdempotencyClaimLost`.
    pub async fn insert_consent(
        &self,
        consent: &ConsentRow,
        idempotency: Option<&IdempotencyRow>,
    ) -> Result<(), StorageError> {
        let sql = concat!(
            "INSERT INTO consents (",
            consent_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            if let Some(idem) = idempotency {
                complete_idempotency!(&mut *tx, idem);
            }
            sqlx::query(sql)
                .bind(&consent.id)
                .bind(&consent.tenant_id)
                .bind(&consent.email)
                .bind(&consent.name)
                .bind(consent.given_at)
                .bind(&consent.method)
                .bind(&consent.document_id)
                .bind(consent.created_at)
                .bind(consent.withdrawn_at)
                .bind(&consent.withdrawal_reason)
                .bind(&consent.sender)
                .execute(&mut *tx)
                .await
                .map_err(|e| StorageError::from_insert(e, "consent"))?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The tenant's consent `id`, if any (another tenant's consent is `None`).
    pub async fn consent(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ConsentRow>, StorageError> {
        let sql = concat!(
            "SELECT ",
            consent_columns!(),
            " FROM consents WHERE tenant_id = $1 AND id = $2"
        );
        // Read through the write pool on SQLite: a deposit citing a consent just recorded or
        // withdrawn must see that write.
        dispatch!(self.writer(), |pool, Db| {
            let row = sqlx::query_as::<_, ConsentRecord>(sql)
                .bind(tenant_id)
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(ConsentRow::from))
        })
    }

    /// The tenant's consents among `ids` (unknown or foreign ids are simply absent).
    pub async fn consents(
        &self,
        tenant_id: &str,
        ids: &[String],
    ) -> Result<Vec<ConsentRow>, StorageError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(super::INSERT_CHUNK) {
            dispatch!(self.writer(), |pool, Db| {
                let mut query = QueryBuilder::<Db>::new(concat!(
                    "SELECT ",
                    consent_columns!(),
                    " FROM consents WHERE tenant_id = "
                ));
                query.push_bind(tenant_id).push(" AND id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id);
                }
                list.push_unseparated(")");
                let found = query
                    .build_query_as::<ConsentRecord>()
                    .fetch_all(pool)
                    .await?;
                rows.extend(found.into_iter().map(ConsentRow::from));
            });
        }
        Ok(rows)
    }

    /// The tenant's consents matching `filter`, active and withdrawn, ordered by id.
    pub async fn list_consents(
        &self,
        tenant_id: &str,
        filter: &ConsentFilter,
    ) -> Result<Vec<ConsentRow>, StorageError> {
        let sql = concat!(
            "SELECT ",
            consent_columns!(),
            " FROM consents WHERE tenant_id = $1 \
             AND ($2 IS NULL OR email = $2) AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4"
        );
        dispatch!(self.reader(), |pool, Db| {
            let rows = sqlx::query_as::<_, ConsentRecord>(sql)
                .bind(tenant_id)
                .bind(&filter.email)
                .bind(&filter.after_id)
                .bind(filter.limit)
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(ConsentRow::from).collect())
        })
    }

    /// Withdraws the tenant's consent `id` at `now`. Returns false when there is no such
    /// consent or it was already withdrawn (the first withdrawal is kept as it was).
    pub async fn withdraw_consent(
        &self,
        tenant_id: &str,
        id: &str,
        now: i64,
        reason: Option<&str>,
    ) -> Result<bool, StorageError> {
        Ok(execute!(
            self.writer(),
            "UPDATE consents SET withdrawn_at = $3, withdrawal_reason = $4 \
                 WHERE tenant_id = $1 AND id = $2 AND withdrawn_at IS NULL",
            tenant_id,
            id,
            now,
            reason
        )? == 1)
    }
}
