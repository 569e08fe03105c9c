//! Real `dabba serve` processes for the tests that kill, restart or duplicate servers.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::SECRET;

pub struct Server {
    pub child: Child,
    pub client: dabba::client::Client,
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Setup {
    pub dir: PathBuf,
    pub database_url: Option<String>,
}

impl Setup {
    /// A fresh data directory, and a fresh PostgreSQL database in the PostgreSQL pass.
    pub async fn fresh(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("dabba-{tag}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let database_url = match std::env::var("DABBA_TEST_STORE").as_deref() {
            Ok("postgres") => Some(crate::helpers::postgres_url().await),
            _ => None,
        };
        Self { dir, database_url }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    // Bound and released: a tiny race with other processes, acceptable in tests.
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `dabba serve` on the setup's database, on `port`, logging to `log`.
pub fn command(setup: &Setup, port: u16, log: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dabba"));
    cmd.arg("serve")
        .env("DABBA_BIND", format!("127.0.0.1:{port}"))
        .env("DABBA_DATA_DIR", setup.dir.join("data"))
        .env("DABBA_JWT_SECRET", SECRET)
        .env("DABBA_OFFER_TIMEOUT_SECS", "4")
        .env("DABBA_DISPATCH_DEADLINE_SECS", "8")
        .env("DABBA_DB_MAX_CONNECTIONS", "4")
        .env("RUST_LOG", "info")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    if let Some(url) = &setup.database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd
}

/// A token signed with the secret the process servers run on.
pub fn token(role: dabba::api::auth::Role, sub: &str) -> String {
    dabba::api::auth::Keys::new(SECRET).mint(
        role,
        sub.parse().expect("uuid"),
        chrono::Duration::hours(1),
    )
}

pub fn ops_token() -> String {
    token(
        dabba::api::auth::Role::Ops,
        &uuid::Uuid::new_v4().to_string(),
    )
}

/// Starts `dabba serve` on the setup's database (a fresh child process) and waits until ready.
pub async fn start(setup: &Setup, run: &str) -> Server {
    start_with(setup, run, |_| {}).await
}

/// [`start`] with the command adjusted first (environment, flags).
pub async fn start_with(setup: &Setup, run: &str, adjust: impl FnOnce(&mut Command)) -> Server {
    let port = free_port();
    let log = setup.dir.join(format!("server-{run}.log"));
    let mut cmd = command(setup, port, &log);
    adjust(&mut cmd);
    let child = cmd.spawn().expect("the dabba binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let server = Server {
        child,
        client: dabba::client::Client::new(&base, Duration::from_secs(20)),
        log,
    };
    for _ in 0..300 {
        if let Ok(r) = server.client.call("GET", "/readyz", None, None).await
            && r.ok()
        {
            return server;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "server did not become ready: {}",
        std::fs::read_to_string(&server.log).unwrap_or_default()
    );
}
