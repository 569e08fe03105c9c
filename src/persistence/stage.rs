//! Staging a batch, the same steps on either dialect: claims first (an idempotency key, a
//! rating, a saved response decide whether their unit applies), then the planner's rows and
//! outbox events through the dialect's [`BulkWrites`], then the singles.

use sqlx::{Pool, Transaction};

use super::batch::{UnitOutcome, Write, WriteUnit, is_rows_only};
use super::dialect::{Dialect, execute, fetch_optional};
use super::planner::{BatchPlan, plan};
use super::records::CommittedEvent;
use super::rows::KeyRow;
use super::{BatchOutcome, StoreError, StoreResult, statements as sql};

/// Rows per multi-row statement on SQLite (well under its bind-parameter limit).
pub const BULK_ROWS: usize = 500;

/// The writes each dialect does its own way: every row of a plan but its singles, in one
/// call (PostgreSQL: one function, so one round trip whatever the batch holds; SQLite: in
/// process, a statement per kind of row or per row).
pub trait BulkWrites: Dialect {
    /// Writes the plan's orders, riders, jobs, ledger, payment operations, attempts and, last,
    /// its outbox events; returns the events' sequence numbers in row order. A guarded
    /// snapshot that changes no row (an older version or revision) fails with
    /// [`StoreError::LostGuard`].
    async fn write_rows(
        tx: &mut Transaction<'static, Self>,
        plan: &BatchPlan<'_>,
    ) -> StoreResult<Vec<i64>>;
}

/// Runs `units` in one open transaction, to be committed by the caller; the outcome holds
/// each unit's result and the outbox events in commit order.
pub async fn stage<DB>(
    pool: &Pool<DB>,
    units: &[WriteUnit],
) -> StoreResult<(Transaction<'static, DB>, BatchOutcome)>
where
    DB: BulkWrites,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    KeyRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let mut tx = pool.begin().await?;
    let mut outcome = BatchOutcome::default();
    let mut applies = Vec::with_capacity(units.len());
    for unit in units {
        let result = match unit.writes.first() {
            Some(first) if first.is_claim() => claim(&mut tx, first).await?,
            _ => UnitOutcome::Applied,
        };
        applies.push(result == UnitOutcome::Applied);
        outcome.units.push(result);
    }
    let plan = plan(units, &applies);
    write_plan(&mut tx, &plan, &mut outcome).await?;
    Ok((tx, outcome))
}

/// Takes a unit's claim; anything but `Applied` means the unit writes nothing.
async fn claim<DB>(tx: &mut Transaction<'static, DB>, write: &Write) -> StoreResult<UnitOutcome>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    KeyRow: for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let taken = match write {
        Write::PlaceOrder {
            order,
            idempotency: Some((key, hash)),
        } => {
            let stmt =
                sql::claim_idempotency_key(order.customer_id, key, hash, order.id, order.placed_at);
            if execute(&mut **tx, stmt).await? == 1 {
                return Ok(UnitOutcome::Applied);
            }
            let first: KeyRow =
                fetch_optional(&mut **tx, sql::idempotent_placement(order.customer_id, key))
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("idempotency key vanished".into()))?;
            let (request_hash, order_id) = first.decode()?;
            return Ok(UnitOutcome::Replayed {
                request_hash,
                order_id,
            });
        }
        Write::AddRating(rating) => execute(&mut **tx, sql::claim_rating(rating)).await? == 0,
        Write::SaveResponse {
            subject,
            key,
            response,
            at,
        } => execute(&mut **tx, sql::claim_response(subject, key, response, *at)).await? == 0,
        _ => false,
    };
    Ok(if taken {
        UnitOutcome::AlreadyClaimed
    } else {
        UnitOutcome::Applied
    })
}

async fn write_plan<DB>(
    tx: &mut Transaction<'static, DB>,
    plan: &BatchPlan<'_>,
    outcome: &mut BatchOutcome,
) -> StoreResult<()>
where
    DB: BulkWrites,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    let seqs = DB::write_rows(tx, plan).await?;
    record_events(seqs, plan, outcome)?;
    for write in &plan.singles {
        for stmt in single(write)? {
            execute(&mut **tx, stmt).await?;
        }
    }
    Ok(())
}

/// Pairs the plan's outbox events with the sequence numbers their rows were given.
pub fn record_events(
    mut seqs: Vec<i64>,
    plan: &BatchPlan<'_>,
    outcome: &mut BatchOutcome,
) -> StoreResult<()> {
    // Sequences are drawn in row order; sort so RETURNING's order does not matter.
    seqs.sort_unstable();
    if seqs.len() != plan.events.len() {
        return Err(StoreError::Corrupt(format!(
            "{} outbox events written, {} sequence numbers returned",
            plan.events.len(),
            seqs.len()
        )));
    }
    for (seq, e) in seqs.into_iter().zip(&plan.events) {
        outcome.events.push(CommittedEvent {
            seq,
            event: (*e).clone(),
        });
    }
    Ok(())
}

/// The plan of a batch that is rows only — no claim decides first whether a unit applies,
/// no single statement follows — or `None`. Such a batch is one statement on PostgreSQL.
pub fn rows_only(units: &[WriteUnit]) -> Option<BatchPlan<'_>> {
    if !is_rows_only(units) {
        return None;
    }
    let plan = plan(units, &vec![true; units.len()]);
    debug_assert!(
        plan.singles.is_empty(),
        "Write::is_bulk_row disagrees with the planner"
    );
    Some(plan)
}

/// Every guarded snapshot must change its row: one that does not lost a race to a newer
/// snapshot, which must fail the request rather than answer 2xx for a write that did not land.
pub fn guard(what: &str, by: &str, wanted: usize, changed: u64) -> StoreResult<()> {
    if changed as usize == wanted {
        return Ok(());
    }
    Err(StoreError::LostGuard(format!(
        "{} of {wanted} {what} snapshots were not newer than the stored {by}",
        wanted - changed as usize
    )))
}

/// The statements of a write that has no bulk form.
fn single(write: &Write) -> StoreResult<Vec<super::dialect::Stmt>> {
    Ok(match write {
        Write::SaveRecurring(r) => vec![super::recurring::save_recurring(r)?],
        Write::RecordOccurrence(o) => vec![super::recurring::record_occurrence(o)],
        Write::Audit(e) => vec![super::audit::insert(e)],
        Write::AddRestaurant { restaurant, at } => vec![sql::add_restaurant(restaurant, *at)],
        Write::SavePayout(p) => vec![super::money::save_payout(p)],
        Write::SaveMenu {
            restaurant,
            menu,
            at,
        } => vec![sql::save_menu(
            *restaurant,
            super::rows::menu_json(menu),
            *at,
        )],
        Write::SetRestaurantStatus {
            id,
            open,
            prep_minutes,
        } => vec![sql::set_restaurant_status(*id, *open, *prep_minutes)],
        Write::AddCustomer { customer, at } => vec![sql::add_customer(customer, *at)],
        Write::AddRating(rating) => vec![sql::fold_rating(rating)],
        Write::SaveCursor { consumer, seq } => vec![sql::save_cursor(consumer, *seq)],
        Write::ParkDeadLetter(d) => vec![sql::park_dead_letter(d)],
        Write::DeadLetterReplayed { id, at } => vec![sql::dead_letter_replayed(*id, *at)],
        // The claim was the whole write.
        Write::SaveResponse { .. } => vec![],
        Write::PlaceOrder { .. }
        | Write::SaveOrder(_)
        | Write::Event(_)
        | Write::SaveRider(_)
        | Write::SaveJob(_)
        | Write::DeleteJob(_)
        | Write::Ledger(_)
        | Write::SavePaymentOp(_)
        | Write::SaveAttempt(_) => vec![],
    })
}
