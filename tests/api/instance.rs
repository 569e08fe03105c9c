//! One server per database: a second `dabba serve` on the same database refuses to start,
//! names the first, and exits non-zero; the first keeps serving.

use std::time::{Duration, Instant};

use crate::process::{Setup, command, free_port, start};

#[actix_web::test]
async fn a_second_server_on_the_same_database_exits_naming_the_first() {
    let setup = Setup::fresh("instance").await;
    let first = start(&setup, "first").await;

    let log = setup.dir.join("server-second.log");
    let mut second = command(&setup, free_port(), &log)
        .spawn()
        .expect("the dabba binary starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait works") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = second.kill();
            panic!("the second server kept running beside the first");
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success(), "the second server must exit non-zero");
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let first_pid = format!("dabba serve pid {}", first.child.id());
    assert!(
        said.contains("in use by") || said.contains("is locked by"),
        "no clear refusal in: {said}"
    );
    assert!(
        said.contains(&first_pid),
        "the refusal does not name the holder: {said}"
    );

    let health = first.client.call("GET", "/readyz", None, None).await;
    assert!(health.expect("the first server answers").ok());
    drop(first);

    // Once the first is gone, the database is free again.
    let third = start(&setup, "third").await;
    drop(third);
}
