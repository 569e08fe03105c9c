//! The recurring-order tables: each schedule as a JSON body with the columns queries select
//! by, and one row per (schedule, date) saying what became of it.

use chrono::{DateTime, NaiveDate, Utc};

use super::dialect::{Param, Stmt};
use super::rows::{from_millis, millis, parse_id};
use super::{Store, StoreError, StoreResult};
use crate::domain::recurring::{OccurrenceRecord, OccurrenceStatus, Recurring};
use crate::domain::{CustomerId, RecurringId};

use Param::{Bool, Int, OptInt, OptText, Text};

/// Writes a schedule; a stored one with the same or a newer version is kept.
pub fn save_recurring(r: &Recurring) -> StoreResult<Stmt> {
    let body = serde_json::to_string(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(Stmt::new(
        "INSERT INTO recurring_orders (id, customer_id, restaurant_id, paused, deleted, next_place_at,
            version, created_at, updated_at, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO UPDATE SET paused = excluded.paused, deleted = excluded.deleted,
            next_place_at = excluded.next_place_at, version = excluded.version,
            updated_at = excluded.updated_at, body = excluded.body
         WHERE recurring_orders.version < excluded.version",
        vec![
            Text(r.id.to_string()),
            Text(r.customer_id.to_string()),
            Text(r.restaurant_id.to_string()),
            Bool(r.paused),
            Bool(r.deleted),
            OptInt(r.next.map(|o| millis(o.place_at()))),
            Int(i64::try_from(r.version).unwrap_or(i64::MAX)),
            Int(millis(r.created_at)),
            Int(millis(r.updated_at)),
            Text(body),
        ],
    ))
}

/// Records what became of a date; the first record of a date stands.
pub fn record_occurrence(o: &OccurrenceRecord) -> Stmt {
    Stmt::new(
        "INSERT INTO recurring_occurrences (recurring_id, date, status, order_id, error, at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (recurring_id, date) DO NOTHING",
        vec![
            Text(o.recurring_id.to_string()),
            Text(o.date.to_string()),
            Text(o.status.as_str().into()),
            OptText(o.order_id.map(|id| id.to_string())),
            OptText(o.error.clone()),
            Int(millis(o.at)),
        ],
    )
}

fn decode(body: &str) -> StoreResult<Recurring> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("recurring order: {e}")))
}

type OccurrenceRow = (String, String, String, Option<String>, Option<String>, i64);

fn decode_occurrence(r: OccurrenceRow) -> StoreResult<OccurrenceRecord> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("recurring occurrence {what}"));
    Ok(OccurrenceRecord {
        recurring_id: parse_id(&r.0)?,
        date: r.1.parse::<NaiveDate>().map_err(|_| corrupt("date"))?,
        status: OccurrenceStatus::parse(&r.2).ok_or_else(|| corrupt("status"))?,
        order_id: r.3.as_deref().map(parse_id).transpose()?,
        error: r.4,
        at: from_millis(r.5)?,
    })
}

impl Store {
    /// A schedule, deleted ones included (the caller decides what a deleted one means).
    pub async fn recurring(&self, id: RecurringId) -> StoreResult<Option<Recurring>> {
        let row: Option<(String,)> = self
            .optional(Stmt::new(
                "SELECT body FROM recurring_orders WHERE id = $1",
                vec![Text(id.to_string())],
            ))
            .await?;
        row.map(|(b,)| decode(&b)).transpose()
    }

    /// A customer's schedules that are not deleted, oldest first.
    pub async fn customer_recurring(&self, customer: CustomerId) -> StoreResult<Vec<Recurring>> {
        let rows: Vec<(String,)> = self
            .all(Stmt::new(
                "SELECT body FROM recurring_orders WHERE customer_id = $1 AND NOT deleted
                 ORDER BY created_at, id",
                vec![Text(customer.to_string())],
            ))
            .await?;
        rows.iter().map(|(b,)| decode(b)).collect()
    }

    /// Schedules whose next occurrence is due to be placed by `now`, earliest first.
    pub async fn due_recurring(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Recurring>> {
        let rows: Vec<(String,)> = self
            .all(Stmt::new(
                "SELECT body FROM recurring_orders WHERE next_place_at IS NOT NULL AND next_place_at <= $1
                 ORDER BY next_place_at, id LIMIT $2",
                vec![Int(millis(now)), Int(limit)],
            ))
            .await?;
        rows.iter().map(|(b,)| decode(b)).collect()
    }

    /// When the earliest next occurrence of any schedule is placed.
    pub async fn next_recurring_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let row: Option<(Option<i64>,)> = self
            .optional(Stmt::new(
                "SELECT MIN(next_place_at) FROM recurring_orders WHERE next_place_at IS NOT NULL",
                vec![],
            ))
            .await?;
        row.and_then(|(t,)| t).map(from_millis).transpose()
    }

    /// What became of each date of a schedule, newest first.
    pub async fn occurrences(
        &self,
        id: RecurringId,
        limit: i64,
    ) -> StoreResult<Vec<OccurrenceRecord>> {
        let rows: Vec<OccurrenceRow> = self
            .all(Stmt::new(
                "SELECT recurring_id, date, status, order_id, error, at FROM recurring_occurrences
                 WHERE recurring_id = $1 ORDER BY date DESC LIMIT $2",
                vec![Text(id.to_string()), Int(limit)],
            ))
            .await?;
        rows.into_iter().map(decode_occurrence).collect()
    }

    /// The record of one date, if it has one.
    pub async fn occurrence(
        &self,
        id: RecurringId,
        date: NaiveDate,
    ) -> StoreResult<Option<OccurrenceRecord>> {
        let row: Option<OccurrenceRow> = self
            .optional(Stmt::new(
                "SELECT recurring_id, date, status, order_id, error, at FROM recurring_occurrences
                 WHERE recurring_id = $1 AND date = $2",
                vec![Text(id.to_string()), Text(date.to_string())],
            ))
            .await?;
        row.map(decode_occurrence).transpose()
    }
}
