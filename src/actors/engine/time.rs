//! The test clock: moving time fires every timer that fell due before the call returns.

use chrono::{DateTime, Utc};

use super::Engine;
use crate::actors::dispatcher::RunTimers;
use crate::actors::error::EngineError;
use crate::domain::Command;

impl Engine {
    /// Moves the engine's clock and fires every timer that fell due, before returning.
    pub async fn advance_clock(&self, by: chrono::Duration) -> Result<DateTime<Utc>, EngineError> {
        self.services.clock.advance(by);
        let overdue = self.dispatcher.send(RunTimers).await?;
        for order_id in overdue {
            if let Err(error) = self.apply(order_id, Command::GiveUpDispatch).await {
                tracing::warn!(%order_id, %error, "could not end undispatched order");
            }
        }
        self.run_desks().await;
        Ok(self.now())
    }
}
