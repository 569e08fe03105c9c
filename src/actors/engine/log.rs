//! The event log as readers see it: where a resuming socket starts, what it missed, and an
//! order's history. The log is the outbox; the hub's head is the last event handed on.

use super::Engine;
use crate::actors::error::EngineError;
use crate::domain::OrderId;
use crate::persistence::{CommittedEvent, LogReader};

/// Where a socket resuming after `since` starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Replay the reader's events after this sequence.
    After(i64),
    /// Events after `since` are gone (retention) or `since` is not from this log: the client
    /// must reload its state; live pushes continue from `head`.
    Resync { head: i64 },
}

/// An order has a few dozen versions at most; this bounds one read of its history.
const ORDER_HISTORY_MAX: i64 = 1_000;

impl Engine {
    /// Decides whether a socket resuming after `since` can be replayed from the log.
    pub async fn resume_point(&self, since: i64) -> Result<Resume, EngineError> {
        let head = self.hub().head();
        // Retention removed everything up to the head when the log is empty.
        let start = self.services.store.log_start().await?.unwrap_or(head + 1);
        if since > head || since + 1 < start {
            return Ok(Resume::Resync { head });
        }
        Ok(Resume::After(since))
    }

    /// `reader`'s events after `after`, at most `limit`, oldest first.
    pub async fn missed_events(
        &self,
        reader: LogReader,
        after: i64,
        limit: i64,
    ) -> Result<Vec<CommittedEvent>, EngineError> {
        Ok(self.services.store.events_for(reader, after, limit).await?)
    }

    /// The order's versions after `after_version`, oldest first.
    pub async fn order_history(
        &self,
        order: OrderId,
        after_version: i64,
    ) -> Result<Vec<CommittedEvent>, EngineError> {
        Ok(self
            .services
            .store
            .order_events(order, after_version, ORDER_HISTORY_MAX)
            .await?)
    }
}
