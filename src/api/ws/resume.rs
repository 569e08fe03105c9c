//! `?since=SEQ`: a socket that comes back replays what its subscriber missed, page by page
//! from the log, then goes live with no duplicate and no hole at the seam.
//!
//! The replay pages until it is nearly caught up, subscribes to the hub, then reads the log
//! once more: anything committed before the subscription is in that last read, anything after
//! it arrives live, and live logged events at or below the last replayed sequence are dropped.
//! Subscribing late keeps a long replay (a rider back from ten minutes in a tunnel, an ops
//! console back from lunch) from overflowing the live queue meanwhile.

use super::{End, Link};
use crate::actors::{Engine, Resume};
use crate::events::hub::{Audience, Subscription, stamp};
use crate::persistence::LogReader;

/// Events read from the log per page.
const PAGE: i64 = 500;

/// What the live loop needs after a resume: the subscription, and the highest sequence
/// already sent (live logged events at or below it are duplicates).
pub struct Resumed {
    pub subscription: Subscription,
    pub sent_up_to: Option<i64>,
}

/// The message telling a client its `since` cannot be replayed.
fn resync(head: i64) -> std::sync::Arc<str> {
    stamp(r#"{"type":"resync_required"}"#, head)
}

pub async fn resume(
    engine: &Engine,
    link: &mut Link,
    audience: Audience,
    since: i64,
) -> Result<Resumed, End> {
    let cursor = match engine.resume_point(since).await {
        Ok(Resume::After(seq)) => seq,
        Ok(Resume::Resync { .. }) => return resync_live(engine, link, audience, "gone").await,
        Err(error) => {
            tracing::warn!(%error, "log unreadable; asking the client to resync");
            return resync_live(engine, link, audience, "unreadable").await;
        }
    };
    let mut subscription = None;
    match replay(engine, link, audience, cursor, &mut subscription).await {
        Ok(sent_up_to) => match subscription {
            Some(subscription) => Ok(Resumed {
                subscription,
                sent_up_to: Some(sent_up_to),
            }),
            None => Err(End::Gone),
        },
        Err(failure) => {
            if let Some(sub) = subscription {
                engine.hub().unsubscribe(audience, sub.id);
            }
            match failure {
                Failure::Link(end) => Err(end),
                Failure::Store(error) => {
                    tracing::warn!(%error, "log unreadable mid-replay; asking the client to resync");
                    resync_live(engine, link, audience, "unreadable").await
                }
            }
        }
    }
}

enum Failure {
    Link(End),
    Store(crate::actors::EngineError),
}

/// Sends the reader's events after `cursor` page by page, subscribing once nearly caught up;
/// returns the last sequence sent.
async fn replay(
    engine: &Engine,
    link: &mut Link,
    audience: Audience,
    mut cursor: i64,
    subscription: &mut Option<Subscription>,
) -> Result<i64, Failure> {
    let reader = match audience {
        Audience::Customer(id) => LogReader::Customer(id),
        Audience::Rider(id) => LogReader::Rider(id),
        Audience::Restaurant(id) => LogReader::Restaurant(id),
        Audience::Ops => LogReader::Everything,
    };
    let mut replayed = 0u64;
    loop {
        let page = engine
            .missed_events(reader, cursor, PAGE)
            .await
            .map_err(Failure::Store)?;
        for event in &page {
            link.send(&stamp(&event.event.payload, event.seq))
                .await
                .map_err(Failure::Link)?;
            cursor = event.seq;
        }
        replayed += page.len() as u64;
        if page.len() as i64 == PAGE {
            continue;
        }
        if subscription.is_some() {
            metrics::histogram!("dabba_ws_replayed_events").record(replayed as f64);
            return Ok(cursor);
        }
        // Nearly caught up: subscribe, then read once more to close the gap.
        *subscription = Some(engine.hub().subscribe(audience));
    }
}

/// Subscribes first, then tells the client to resync at the current head: pushes queued
/// meanwhile are newer state, harmless after a reload.
async fn resync_live(
    engine: &Engine,
    link: &mut Link,
    audience: Audience,
    reason: &'static str,
) -> Result<Resumed, End> {
    let subscription = engine.hub().subscribe(audience);
    metrics::counter!("dabba_ws_resyncs_total", "reason" => reason).increment(1);
    if let Err(end) = link.send(&resync(engine.hub().head())).await {
        engine.hub().unsubscribe(audience, subscription.id);
        return Err(end);
    }
    Ok(Resumed {
        subscription,
        sent_up_to: None,
    })
}
