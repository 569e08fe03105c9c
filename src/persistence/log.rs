//! Reads of the outbox as an event log: one reader's events after a sequence (resuming
//! sockets), an order's history, where the log starts, and the dead letters consumers parked.

use super::records::{CommittedEvent, DeadLetterRecord, LogReader};
use super::rows::{self, decode_all};
use super::statements as sql;
use super::{Store, StoreResult};
use crate::domain::OrderId;

impl Store {
    /// `reader`'s events after `seq`, oldest first.
    pub async fn events_for(
        &self,
        reader: LogReader,
        seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<CommittedEvent>> {
        decode_all::<rows::EventRow, _>(self.all(sql::events_for(reader, seq, limit)).await?)
    }

    /// An order's events after `after_version`, oldest first.
    pub async fn order_events(
        &self,
        order: OrderId,
        after_version: i64,
        limit: i64,
    ) -> StoreResult<Vec<CommittedEvent>> {
        decode_all::<rows::EventRow, _>(
            self.all(sql::order_events(order, after_version, limit))
                .await?,
        )
    }

    /// The oldest sequence the log still holds; `None` when retention emptied it.
    pub async fn log_start(&self) -> StoreResult<Option<i64>> {
        let row: Option<(Option<i64>,)> = self.optional(sql::log_start()).await?;
        Ok(row.and_then(|(s,)| s))
    }

    /// Dead letters not yet replayed, oldest first.
    pub async fn dead_letters(&self, limit: i64) -> StoreResult<Vec<DeadLetterRecord>> {
        decode_all::<rows::DeadLetterRow, _>(self.all(sql::dead_letters(limit)).await?)
    }

    pub async fn dead_letter(&self, id: uuid::Uuid) -> StoreResult<Option<DeadLetterRecord>> {
        let row: Option<rows::DeadLetterRow> = self.optional(sql::dead_letter(id)).await?;
        row.map(DeadLetterRecord::try_from).transpose()
    }
}
