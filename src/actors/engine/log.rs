//! The event log as readers see it: where a resuming socket starts, what it missed, and an
//! order's history. The log is the outbox; the hub's head is the last event handed on.

use std::sync::atomic::Ordering;

use super::Engine;
use crate::actors::error::EngineError;
use crate::domain::OrderId;
use crate::events::analytics::OrderStats;
use crate::events::backbone::ReplayRefused;
use crate::persistence::{CommittedEvent, DeadLetterRecord, LogReader};

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

/// A dead letter's replay was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("dead letter not found")]
    NotFound,
    #[error("the dead letter was already replayed")]
    AlreadyReplayed,
    #[error("its consumer {0:?} does not run here")]
    UnknownConsumer(String),
    #[error("its consumer has too many replays queued")]
    Busy,
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl Engine {
    /// Dead letters not yet replayed, oldest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetterRecord>, EngineError> {
        Ok(self.services.store.dead_letters(limit).await?)
    }

    /// Hands a dead letter back to its consumer; it is marked replayed once handled.
    pub async fn replay_dead_letter(&self, id: uuid::Uuid) -> Result<(), ReplayError> {
        let letter = self
            .services
            .store
            .dead_letter(id)
            .await
            .map_err(EngineError::from)?
            .ok_or(ReplayError::NotFound)?;
        if letter.replayed_at.is_some() {
            return Err(ReplayError::AlreadyReplayed);
        }
        let consumer = letter.consumer.clone();
        self.backbone.replay(letter).map_err(|e| match e {
            ReplayRefused::UnknownConsumer => ReplayError::UnknownConsumer(consumer),
            ReplayRefused::Busy => ReplayError::Busy,
        })
    }

    /// The analytics consumer's figures and every consumer's counters.
    pub fn event_stats(&self) -> EventStats {
        EventStats {
            orders: self.backbone.analytics.snapshot(60),
            consumers: self
                .backbone
                .consumers()
                .into_iter()
                .map(|(name, s)| ConsumerFigures {
                    name,
                    handled: s.handled.load(Ordering::Relaxed),
                    retries: s.retries.load(Ordering::Relaxed),
                    dead_letters: s.dead_letters.load(Ordering::Relaxed),
                    duplicates: s.duplicates.load(Ordering::Relaxed),
                    claimed: s.claimed.load(Ordering::Relaxed),
                })
                .collect(),
            log_head: self.hub().head(),
        }
    }
}

pub struct EventStats {
    pub orders: OrderStats,
    pub consumers: Vec<ConsumerFigures>,
    /// The last sequence of the log handed on.
    pub log_head: i64,
}

/// One consumer's counters since this process started.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ConsumerFigures {
    pub name: &'static str,
    pub handled: u64,
    pub retries: u64,
    pub dead_letters: u64,
    pub duplicates: u64,
    pub claimed: u64,
}
