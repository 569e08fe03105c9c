//! The test clock: moving time fires every timer that fell due before the call returns.

use chrono::{DateTime, Utc};

use super::Engine;
use crate::actors::dispatcher::{GetStats, RunTimers};
use crate::actors::error::EngineError;
use crate::domain::Command;

impl Engine {
    /// Moves the engine's clock and fires every timer that fell due, before returning.
    /// Recurring orders are placed at their own moments on the way (a week's jump places each
    /// day's order an hour before its time, as the days would have), the rest at the end.
    pub async fn advance_clock(&self, by: chrono::Duration) -> Result<DateTime<Utc>, EngineError> {
        // The clock is real time plus an offset, and the dispatcher stamps what it is handed
        // (an order to dispatch, its offers' deadlines) when it gets to it. Wait until it has
        // handled everything sent before this call, so nothing an earlier, answered request
        // started is stamped after the new time is decided (on a busy machine it was, and the
        // jump fell short of deadlines by the dispatcher's delay).
        self.dispatcher.send(GetStats).await?;
        let target = self.now() + by;
        while let Some(due) = self.next_recurring_due().await {
            let now = self.now();
            if due <= now || due > target {
                break;
            }
            self.services.clock.advance(due - now);
            self.run_recurring().await;
            self.run_desks().await;
        }
        let now = self.now();
        if target > now {
            self.services.clock.advance(target - now);
        }
        let overdue = self.dispatcher.send(RunTimers).await?;
        for order_id in overdue {
            if let Err(error) = self.apply(order_id, Command::GiveUpDispatch).await {
                tracing::warn!(%order_id, %error, "could not end undispatched order");
            }
        }
        self.run_recurring().await;
        self.run_desks().await;
        Ok(self.now())
    }
}
