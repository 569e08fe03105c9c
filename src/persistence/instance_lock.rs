//! One server per database. Two `dabba serve` on one database would each believe they own
//! every rider and order, and double-book riders; until zones split the work between nodes,
//! the second one refuses to start and names the first.
//!
//! PostgreSQL: a session advisory lock held by a dedicated connection whose
//! `application_name` says who holds it. SQLite: an exclusive lock on `<file>.lock`, whose
//! contents say who holds it.

use std::io::{Read, Seek, Write};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::oneshot;

use super::{StoreError, StoreResult};

/// Advisory lock key: (namespace, id). The namespace spells "dabb".
const LOCK_NAMESPACE: i32 = 0x6461_6262;
const LOCK_ID: i32 = 1;
/// A restarting server may find its predecessor's lock still being released.
const PATIENCE: Duration = Duration::from_secs(5);
const RETRY_EVERY: Duration = Duration::from_millis(100);
/// How often the holder checks that its lock connection is alive.
const KEEPALIVE: Duration = Duration::from_secs(5);

/// Held for the life of the server; dropping it releases the database.
pub struct InstanceLock {
    _held: Held,
}

enum Held {
    /// Dropping the sender tells the holder task to unlock and disconnect.
    Postgres(#[allow(dead_code)] oneshot::Sender<()>),
    Sqlite(#[allow(dead_code)] std::fs::File),
    /// In-memory SQLite: nobody else can open it.
    Nothing,
}

/// Who this process is, as written where the next one will read it.
fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown host".into());
    format!(
        "dabba serve pid {} on {host} since {}",
        std::process::id(),
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    )
}

impl InstanceLock {
    /// Takes the database for this process, waiting a few seconds for a previous holder to
    /// let go; `StoreError::InUse` names the holder otherwise.
    pub async fn acquire(url: &str) -> StoreResult<Self> {
        let held = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Held::Postgres(lock_postgres(url).await?)
        } else {
            match sqlite_path(url) {
                Some(path) => Held::Sqlite(lock_file(&format!("{path}.lock")).await?),
                None => Held::Nothing,
            }
        };
        Ok(Self { _held: held })
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or(url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:" && !rest.contains("mode=memory")).then_some(path)
}

async fn lock_file(path: &str) -> StoreResult<std::fs::File> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StoreError::InUse(format!("cannot open {path}: {e}")))?;
    let started = tokio::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < PATIENCE => {
                tokio::time::sleep(RETRY_EVERY).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(StoreError::InUse(format!(
                    "{path} is locked by {}",
                    holder.trim()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::InUse(format!("cannot lock {path}: {e}")));
            }
        }
    }
    // Locked: say who holds it (best effort, the lock itself is what counts).
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = file.write_all(holder_name().as_bytes());
    let _ = file.flush();
    Ok(file)
}

async fn connect(url: &str) -> StoreResult<PgConnection> {
    let options = PgConnectOptions::from_str(url)?.application_name(&holder_name());
    Ok(options.connect().await?)
}

async fn try_lock(conn: &mut PgConnection) -> StoreResult<bool> {
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(LOCK_NAMESPACE)
        .bind(LOCK_ID)
        .fetch_one(conn)
        .await?)
}

/// The `application_name` of the session holding the lock, if any.
async fn holder(conn: &mut PgConnection) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT a.application_name || ' (client ' || COALESCE(host(a.client_addr), 'local socket') || ')'
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int8 AND l.objid = $2::int8
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(i64::from(LOCK_NAMESPACE as u32))
    .bind(i64::from(LOCK_ID))
    .fetch_optional(conn)
    .await?)
}

async fn lock_postgres(url: &str) -> StoreResult<oneshot::Sender<()>> {
    let mut conn = connect(url).await?;
    let started = tokio::time::Instant::now();
    while !try_lock(&mut conn).await? {
        if started.elapsed() >= PATIENCE {
            let who = holder(&mut conn)
                .await?
                .unwrap_or_else(|| "another session".into());
            return Err(StoreError::InUse(format!(
                "the database is in use by {who}"
            )));
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
    let (release, released) = oneshot::channel();
    tokio::spawn(hold(conn, url.to_owned(), released));
    Ok(release)
}

/// Keeps the lock's session alive until released. If the session dies (a database restart,
/// a network cut) the lock went with it: take it again as soon as the database answers.
async fn hold(mut conn: PgConnection, url: String, mut released: oneshot::Receiver<()>) {
    let mut every = tokio::time::interval(KEEPALIVE);
    let mut locked = true;
    loop {
        tokio::select! {
            _ = &mut released => break,
            _ = every.tick() => {}
        }
        if locked && sqlx::query("SELECT 1").execute(&mut conn).await.is_ok() {
            continue;
        }
        if locked {
            tracing::error!("lost the database lock's session; taking the lock again");
            locked = false;
        }
        let Ok(mut fresh) = connect(&url).await else {
            continue;
        };
        match try_lock(&mut fresh).await {
            Ok(true) => {
                tracing::info!("database lock taken again");
                conn = fresh;
                locked = true;
            }
            Ok(false) => {
                tracing::error!("another server took the database while our lock was lost");
            }
            Err(_) => {}
        }
    }
    if locked {
        let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
            .execute(&mut conn)
            .await;
    }
    let _ = conn.close().await;
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn sqlite_lock_files_sit_beside_the_database() {
        assert_eq!(sqlite_path("sqlite:///tmp/d.db"), Some("/tmp/d.db"));
        assert_eq!(
            sqlite_path("sqlite://data/d.db?mode=rwc"),
            Some("data/d.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
