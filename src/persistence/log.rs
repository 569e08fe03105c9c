//! Reads of the outbox as an event log: one reader's events after a sequence (resuming
//! sockets), an order's history, where the log starts, and the dead letters consumers parked.

use chrono::{DateTime, Utc};

use super::records::{CommittedEvent, DeadLetterRecord, LogReader};
use super::rows::{self, decode_all, millis};
use super::statements as sql;
use super::{Store, StoreResult};
use crate::domain::{CustomerId, OrderId};

impl Store {
    /// `reader`'s events after `seq`, oldest first.
    pub async fn events_for(
        &self,
        reader: LogReader,
        seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<CommittedEvent>> {
        let stmt = match reader {
            LogReader::Everything => sql::events_after(seq, limit),
            LogReader::Customer(id) => return self.customer_events(id, seq, limit).await,
            LogReader::Restaurant(id) => sql::restaurant_events(id, seq, limit),
            LogReader::Rider(id) => sql::rider_events(id, seq, limit),
        };
        decode_all::<rows::EventRow, _>(self.all(stmt).await?)
    }

    /// A customer's events after `seq`, read order by order: each of their orders that may
    /// have changed since, then that order's events, merged by sequence.
    async fn customer_events(
        &self,
        id: CustomerId,
        seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<CommittedEvent>> {
        let orders: Vec<(String,)> = self
            .all(sql::customer_orders_changed_after(id, seq))
            .await?;
        let mut events: Vec<CommittedEvent> = Vec::new();
        for (order,) in orders {
            let page = self
                .all(sql::order_events_after_seq(&order, seq, limit))
                .await?;
            events.extend(decode_all::<rows::EventRow, _>(page)?);
        }
        events.sort_by_key(|e| e.seq);
        events.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(events)
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

    /// The sequence just before the first event at or after `at` (the log's end if none
    /// is): a reader starting there sees the events since `at`. Event times grow with the
    /// sequence (up to commit reordering, which a window of hours does not notice), so a
    /// binary search by index lookups finds it without scanning the log.
    pub async fn seq_before(&self, at: DateTime<Utc>) -> StoreResult<i64> {
        let (Some(mut low), Some(mut high)) = (self.log_start().await?, self.log_end().await?)
        else {
            return Ok(0);
        };
        let at = millis(at);
        let recent = |e: Option<(i64, i64)>| e.is_some_and(|(_, t)| t >= at);
        if !recent(self.event_from(high).await?) {
            return Ok(high);
        }
        // The smallest position whose first event is recent; `high`'s is.
        while low < high {
            let mid = low + (high - low) / 2;
            if recent(self.event_from(mid).await?) {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        Ok(self.event_from(low).await?.map_or(low, |(seq, _)| seq) - 1)
    }

    async fn event_from(&self, seq: i64) -> StoreResult<Option<(i64, i64)>> {
        self.optional(sql::event_at_or_after(seq)).await
    }

    /// The newest sequence in the outbox (none when it is empty).
    pub async fn log_end(&self) -> StoreResult<Option<i64>> {
        let row: Option<(Option<i64>,)> = self.optional(sql::log_end()).await?;
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
