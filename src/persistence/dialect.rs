//! What both SQL dialects share: statements as text plus typed parameters ([`Stmt`]), bound
//! and run by one generic function each, so a statement that reads the same in PostgreSQL and
//! SQLite is written once.

use sqlx::{Arguments, Database, Encode, Executor, FromRow, Type};

use super::StoreResult;

/// A value bound to a statement. Ids are UUID text, times Unix milliseconds.
#[derive(Clone, Debug)]
pub enum Param {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Real(f64),
    Bool(bool),
}

/// A statement and its parameters (`$1`, `$2`, … in order).
#[derive(Clone, Debug)]
pub struct Stmt {
    pub sql: &'static str,
    pub params: Vec<Param>,
}

impl Stmt {
    pub fn new(sql: &'static str, params: Vec<Param>) -> Self {
        Self { sql, params }
    }
}

/// A database both dialect files can hand shared statements to.
pub trait Dialect: Database {
    /// The database's arguments type, named here so generic code knows it binds.
    type Args: sqlx::IntoArguments<Self> + Send;
    fn arguments(params: Vec<Param>) -> Self::Args;
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

/// Binds parameters for any database that encodes our parameter types.
fn bind_all<DB>(params: Vec<Param>) -> DB::Arguments
where
    DB: Database,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
    for<'t> f64: Encode<'t, DB> + Type<DB>,
    for<'t> bool: Encode<'t, DB> + Type<DB>,
{
    let mut args = DB::Arguments::default();
    for p in params {
        // Encoding these plain values cannot fail; an error would surface at execution.
        let _ = match p {
            Param::Text(v) => args.add(v),
            Param::OptText(v) => args.add(v),
            Param::Int(v) => args.add(v),
            Param::OptInt(v) => args.add(v),
            Param::Real(v) => args.add(v),
            Param::Bool(v) => args.add(v),
        };
    }
    args
}

impl Dialect for sqlx::Postgres {
    type Args = sqlx::postgres::PgArguments;
    fn arguments(params: Vec<Param>) -> Self::Args {
        bind_all::<Self>(params)
    }
    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Dialect for sqlx::Sqlite {
    type Args = sqlx::sqlite::SqliteArguments;
    fn arguments(params: Vec<Param>) -> Self::Args {
        bind_all::<Self>(params)
    }
    fn rows_affected(result: &Self::QueryResult) -> u64 {
        result.rows_affected()
    }
}

/// Runs a statement; the number of rows it changed.
pub async fn execute<'c, DB, E>(executor: E, stmt: Stmt) -> StoreResult<u64>
where
    DB: Dialect,
    E: Executor<'c, Database = DB>,
{
    let done = sqlx::query_with(stmt.sql, DB::arguments(stmt.params))
        .execute(executor)
        .await?;
    Ok(DB::rows_affected(&done))
}

pub async fn fetch_all<'c, DB, E, R>(executor: E, stmt: Stmt) -> StoreResult<Vec<R>>
where
    DB: Dialect,
    E: Executor<'c, Database = DB>,
    R: Send + Unpin + for<'r> FromRow<'r, DB::Row>,
{
    Ok(sqlx::query_as_with(stmt.sql, DB::arguments(stmt.params))
        .fetch_all(executor)
        .await?)
}

pub async fn fetch_optional<'c, DB, E, R>(executor: E, stmt: Stmt) -> StoreResult<Option<R>>
where
    DB: Dialect,
    E: Executor<'c, Database = DB>,
    R: Send + Unpin + for<'r> FromRow<'r, DB::Row>,
{
    Ok(sqlx::query_as_with(stmt.sql, DB::arguments(stmt.params))
        .fetch_optional(executor)
        .await?)
}
