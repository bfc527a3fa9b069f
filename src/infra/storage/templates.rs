//! Collection letter templates of a tenant (custom wording for relances and mises en
//! demeure): recorded once, read, listed — never changed nor deleted (a letter's evidence may
//! cite one; the 0006 migration refuses updates and deletes at the database level).

use super::{IdempotencyRow, Storage, StorageError};

/// A recorded template.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TemplateRow {
    /// Template id (UUID v7).
    pub id: String,
    /// Owning tenant.
    pub tenant_id: String,
    /// The tenant's name for it.
    pub name: String,
    /// `relance` or `mise_en_demeure`.
    pub kind: String,
    /// The wording, with placeholders, as checked by `collection::Wording::parse`.
    pub wording: String,
    /// When it was recorded, Unix µs.
    pub created_at: i64,
}

macro_rules! template_columns {
    () => {
        "id, tenant_id, name, kind, wording, created_at"
    };
}

impl Storage {
    /// Records a template and the optional idempotency record in one transaction. An
    /// claim this request no longer holds yields `IdempotencyClaimLost`.
    pub async fn insert_template(
        &self,
        template: &TemplateRow,
        idempotency: Option<&IdempotencyRow>,
    ) -> Result<(), StorageError> {
        let sql = concat!(
            "INSERT INTO templates (",
            template_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6)"
        );
        dispatch!(self.writer(), |pool, Db| {
            let mut tx = pool.begin().await?;
            if let Some(idem) = idempotency {
                complete_idempotency!(&mut *tx, idem);
            }
            sqlx::query(sql)
                .bind(&template.id)
                .bind(&template.tenant_id)
                .bind(&template.name)
                .bind(&template.kind)
                .bind(&template.wording)
                .bind(template.created_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| StorageError::from_insert(e, "template"))?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The tenant's template `id`, if any (another tenant's template is `None`).
    pub async fn template(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<TemplateRow>, StorageError> {
        let sql = concat!(
            "SELECT ",
            template_columns!(),
            " FROM templates WHERE tenant_id = $1 AND id = $2"
        );
        // Read through the write pool on SQLite: a letter composed right after the template
        // was recorded must find it.
        fetch_optional!(self.writer(), TemplateRow, sql, tenant_id, id)
    }

    /// The tenant's templates ordered by id (creation time), after `after_id`, at most `limit`.
    pub async fn list_templates(
        &self,
        tenant_id: &str,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TemplateRow>, StorageError> {
        let sql = concat!(
            "SELECT ",
            template_columns!(),
            " FROM templates WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        );
        fetch_all!(self.reader(), TemplateRow, sql, tenant_id, after_id, limit)
    }
}
