//! The ops audit log: one row per ops action, newest first when read.

use chrono::{DateTime, Utc};

use super::dialect::{Param, Stmt};
use super::rows::{from_millis, millis};
use super::{Store, StoreResult};

use Param::{Int, OptText, Text};

/// One ops action.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    #[serde(skip)]
    pub id: uuid::Uuid,
    pub at: DateTime<Utc>,
    /// The ops token's subject.
    pub actor: String,
    /// `reassign`, `rider_offline`, …
    pub action: String,
    /// What it was done to: `order:{id}`, `rider:{id}`.
    pub target: String,
    /// What else the action said (the new rider of a reassignment, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub fn insert(e: &AuditEntry) -> Stmt {
    Stmt::new(
        "INSERT INTO ops_audit (id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO NOTHING",
        vec![
            Text(e.id.to_string()),
            Int(millis(e.at)),
            Text(e.actor.clone()),
            Text(e.action.clone()),
            Text(e.target.clone()),
            OptText(e.detail.clone()),
        ],
    )
}

type Row = (String, i64, String, String, String, Option<String>);

impl Store {
    /// The latest ops actions, newest first.
    pub async fn audit(&self, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows: Vec<Row> = self
            .all(Stmt::new(
                "SELECT id, at, actor, action, target, detail FROM ops_audit ORDER BY at DESC, id LIMIT $1",
                vec![Int(limit)],
            ))
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: super::rows::parse_id(&r.0)?,
                    at: from_millis(r.1)?,
                    actor: r.2,
                    action: r.3,
                    target: r.4,
                    detail: r.5,
                })
            })
            .collect()
    }
}
