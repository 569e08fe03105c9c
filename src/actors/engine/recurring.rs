//! Recurring orders: made, changed, skipped and deleted through the API, and placed by a
//! runner (every second, and whenever the test clock moves) an hour before each occurrence,
//! as a normal order: same checks, same payment, same events.
//!
//! Once per date, whatever happens: every change and every run holds one lock (one process
//! owns the store), a date's placement carries the idempotency key `recurring:{id}:{date}`
//! (a crash between placing and recording replays the first order), and the store keeps one
//! record per (schedule, date).

use chrono::{DateTime, NaiveDate, Utc};

use super::{Engine, NewOrderRequest};
use crate::actors::error::EngineError;
use crate::domain::recurring::{
    Occurrence, OccurrenceRecord, OccurrenceStatus, Recurring, Schedule,
};
use crate::domain::{CustomerId, Delivery, MenuError, OrderError, OrderLine, PaymentMethod};
use crate::domain::{RecurringId, RestaurantId};
use crate::events::relay;
use crate::persistence::{Write, WriteUnit};

/// What a customer asks for when making a recurring order (validated by the API).
pub struct NewRecurring {
    pub customer_id: CustomerId,
    pub restaurant_id: RestaurantId,
    pub lines: Vec<OrderLine>,
    pub delivery: Delivery,
    pub payment: PaymentMethod,
    pub payment_token: Option<String>,
    pub schedule: Schedule,
}

/// Schedules handled per run; the rest wait a second.
const RUN_BATCH: i64 = 200;

impl Engine {
    pub async fn create_recurring(&self, input: NewRecurring) -> Result<Recurring, EngineError> {
        let restaurant = self.restaurant(input.restaurant_id)?;
        // Checked now so a mistake is told at once (each occurrence checks again).
        restaurant.menu.price(&input.lines)?;
        if !self
            .services
            .policy
            .within_radius(restaurant.location, input.delivery.location)
        {
            return Err(OrderError::OutOfRadius.into());
        }
        let _one_at_a_time = self.recurring_lock.lock().await;
        let now = self.now();
        let recurring = Recurring {
            id: RecurringId::new(),
            customer_id: input.customer_id,
            restaurant_id: input.restaurant_id,
            lines: input.lines,
            delivery: input.delivery,
            payment: input.payment,
            payment_token: input.payment_token,
            next: input.schedule.first_placeable(now, &Default::default()),
            schedule: input.schedule,
            paused: false,
            skips: Default::default(),
            deleted: false,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.save_recurring(recurring.clone(), None).await?;
        Ok(recurring)
    }

    /// A schedule that is not deleted.
    pub async fn recurring(&self, id: RecurringId) -> Result<Recurring, EngineError> {
        self.services
            .store
            .recurring(id)
            .await?
            .filter(|r| !r.deleted)
            .ok_or(EngineError::NotFound("recurring order"))
    }

    pub async fn customer_recurring(
        &self,
        customer: CustomerId,
    ) -> Result<Vec<Recurring>, EngineError> {
        Ok(self.services.store.customer_recurring(customer).await?)
    }

    /// What became of the schedule's dates, newest first.
    pub async fn occurrences(&self, id: RecurringId) -> Result<Vec<OccurrenceRecord>, EngineError> {
        Ok(self.services.store.occurrences(id, 100).await?)
    }

    /// Pauses, resumes or reschedules (`check` sees the schedule first: who may change it).
    pub async fn update_recurring(
        &self,
        id: RecurringId,
        check: impl FnOnce(&Recurring) -> Result<(), EngineError>,
        paused: Option<bool>,
        schedule: Option<Schedule>,
    ) -> Result<Recurring, EngineError> {
        let _one_at_a_time = self.recurring_lock.lock().await;
        let mut r = self.recurring(id).await?;
        check(&r)?;
        if schedule.is_none() && paused.is_none_or(|p| p == r.paused) {
            return Ok(r); // nothing to change
        }
        let now = self.now();
        if let Some(schedule) = schedule {
            r = r.reschedule(schedule, now);
        }
        if let Some(paused) = paused.filter(|p| *p != r.paused) {
            r = r.set_paused(paused, now);
        }
        self.save_recurring(r.clone(), None).await?;
        Ok(r)
    }

    /// Skips one date; a date already placed is refused (cancel its order instead).
    pub async fn skip_recurring(
        &self,
        id: RecurringId,
        check: impl FnOnce(&Recurring) -> Result<(), EngineError>,
        date: NaiveDate,
    ) -> Result<Recurring, EngineError> {
        let _one_at_a_time = self.recurring_lock.lock().await;
        let r = self.recurring(id).await?;
        check(&r)?;
        let now = self.now();
        if date < r.schedule.local_date(now) {
            return Err(EngineError::InvalidState(format!(
                "{date} has passed: only today or later can be skipped"
            )));
        }
        if let Some(done) = self.services.store.occurrence(id, date).await? {
            return Err(EngineError::InvalidState(format!(
                "the occurrence on {date} was already {}{}",
                done.status.as_str(),
                if done.order_id.is_some() {
                    ": cancel its order instead"
                } else {
                    ""
                }
            )));
        }
        let skipped = OccurrenceRecord {
            recurring_id: r.id,
            date,
            status: OccurrenceStatus::Skipped,
            order_id: None,
            error: None,
            at: now,
        };
        let r = r.skip(date, now);
        let mut writes = vec![Write::SaveRecurring(r.clone())];
        // Recorded now: the date's one record, so nothing can place it later.
        writes.push(Write::RecordOccurrence(skipped));
        self.services.writer.submit(WriteUnit::new(writes)).await?;
        Ok(r)
    }

    pub async fn delete_recurring(
        &self,
        id: RecurringId,
        check: impl FnOnce(&Recurring) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let _one_at_a_time = self.recurring_lock.lock().await;
        let r = self.recurring(id).await?;
        check(&r)?;
        let r = r.delete(self.now());
        self.save_recurring(r, None).await
    }

    /// Places every occurrence due by now; how many dates were dealt with.
    pub async fn run_recurring(&self) -> usize {
        let _one_at_a_time = self.recurring_lock.lock().await;
        let now = self.now();
        let due = match self.services.store.due_recurring(now, RUN_BATCH).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "could not read due recurring orders; will retry");
                return 0;
            }
        };
        let mut dealt = 0;
        for r in due {
            let id = r.id;
            match self.run_one(r, now).await {
                Ok(true) => dealt += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(recurring_id = %id, %error, "recurring order not run; will retry")
                }
            }
        }
        dealt
    }

    /// When the next occurrence of any schedule is due to be placed.
    pub(super) async fn next_recurring_due(&self) -> Option<DateTime<Utc>> {
        self.services
            .store
            .next_recurring_due()
            .await
            .ok()
            .flatten()
    }

    /// Deals with `r`'s next date: places it, or records why not, and moves past it. `false`
    /// when placing failed for a passing reason (tried again on the next run).
    async fn run_one(&self, r: Recurring, now: DateTime<Utc>) -> Result<bool, EngineError> {
        let Some(occ) = r.next else {
            return Ok(false);
        };
        let record = |status, order_id, error: Option<String>| OccurrenceRecord {
            recurring_id: r.id,
            date: occ.date,
            status,
            order_id,
            error,
            at: now,
        };
        let already = self.services.store.occurrence(r.id, occ.date).await?;
        let outcome = if already.is_some() {
            // Dealt with before a crash: only the move past it was lost.
            None
        } else if occ.deliver_at <= now {
            Some(record(
                OccurrenceStatus::Missed,
                None,
                Some("missed".into()),
            ))
        } else {
            match self.place_occurrence(&r, occ).await {
                Ok(order_id) => Some(record(OccurrenceStatus::Placed, Some(order_id), None)),
                Err(e) if passing(&e) => {
                    tracing::info!(recurring_id = %r.id, error = %e, "occurrence not placed yet; will retry");
                    return Ok(false);
                }
                Err(e) => Some(record(
                    OccurrenceStatus::Failed,
                    None,
                    Some(code(&e).into()),
                )),
            }
        };
        if let Some(o) = &outcome {
            metrics::counter!("dabba_recurring_occurrences_total", "status" => o.status.as_str())
                .increment(1);
            if o.status != OccurrenceStatus::Placed {
                tracing::warn!(recurring_id = %r.id, date = %o.date, status = o.status.as_str(),
                    error = ?o.error, "a recurring occurrence was not placed; the customer is told");
            }
        }
        let (customer, restaurant) = (r.customer_id, r.restaurant_id);
        self.save_recurring(r.advance(now), outcome.map(|o| (o, customer, restaurant)))
            .await?;
        Ok(true)
    }

    async fn place_occurrence(
        &self,
        r: &Recurring,
        occ: Occurrence,
    ) -> Result<crate::domain::OrderId, EngineError> {
        let request = NewOrderRequest {
            customer_id: r.customer_id,
            restaurant_id: r.restaurant_id,
            lines: r.lines.clone(),
            delivery: r.delivery.clone(),
            deliver_at: Some(occ.deliver_at),
            payment: r.payment,
            payment_token: r.payment_token.clone(),
            recurring_id: Some(r.id),
        };
        let key = format!("recurring:{}:{}", r.id, occ.date);
        let (order, _) = self.place_order(request, Some((key.clone(), key))).await?;
        Ok(order.id)
    }

    /// Writes the schedule and, with it, what became of a date (and tells the customer).
    async fn save_recurring(
        &self,
        r: Recurring,
        occurrence: Option<(OccurrenceRecord, CustomerId, RestaurantId)>,
    ) -> Result<(), EngineError> {
        let mut writes = vec![Write::SaveRecurring(r)];
        if let Some((o, customer, restaurant)) = occurrence {
            writes.push(Write::Event(relay::occurrence_event(
                &o, customer, restaurant,
            )));
            writes.push(Write::RecordOccurrence(o));
        }
        self.services.writer.submit(WriteUnit::new(writes)).await?;
        Ok(())
    }
}

/// Errors that pass by themselves: worth another try before the occurrence's time.
fn passing(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::Store(_)
            | EngineError::Unavailable
            | EngineError::PaymentUnavailable(_)
            | EngineError::RestaurantBusy(_)
    )
}

/// The error code placement would have answered, for the occurrence's record.
fn code(e: &EngineError) -> &'static str {
    match e {
        EngineError::RestaurantClosed => "restaurant_closed",
        EngineError::NotFound(_) => "not_found",
        EngineError::Menu(MenuError::ItemUnavailable(_)) => "item_unavailable",
        EngineError::Menu(MenuError::PriceChanged { .. }) => "price_changed",
        EngineError::Order(OrderError::OutOfRadius) => "out_of_radius",
        EngineError::PaymentDeclined(_) => "payment_declined",
        EngineError::IdempotencyKeyReused => "idempotency_key_reused",
        _ => "invalid_state",
    }
}
