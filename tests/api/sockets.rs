//! WebSockets one client cannot weaponise (issue 10's red-team cases, as regression tests).

use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::helpers::{Options, north, spawn_app, spawn_app_with};
use crate::process::{Setup, start};
use crate::raw;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[actix_web::test]
async fn a_frame_declaring_a_gigabyte_is_refused_by_its_header_with_memory_flat() {
    let setup = Setup::fresh("frame").await;
    let server = start(&setup, "frame").await;
    let ops = crate::process::ops_token();
    let rider = server.client.add_rider(&ops, "big").await.unwrap();
    let token = crate::process::token(dabba::api::auth::Role::Rider, &rider);
    // Let start-up settle first (the PostgreSQL store's background consumers allocate their
    // first buffers in the first moments), so the baseline is the idle server.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(server.child.id());

    let mut stream = raw::connect(server.client.base(), false).await;
    let head = raw::upgrade(&mut stream, &format!("/v1/ws?token={token}")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
        .write_all(&raw::frame_header(0x1, 1 << 30))
        .await
        .unwrap();
    // Offer 50 MB behind the header; the server must cut us long before taking it all.
    let chunk = vec![b'x'; 64 * 1024];
    let mut offered = 0usize;
    while offered < 50 * 1024 * 1024 {
        match tokio::time::timeout(Duration::from_secs(5), stream.write_all(&chunk)).await {
            Ok(Ok(())) => offered += chunk.len(),
            Ok(Err(_)) => break, // reset by the server
            Err(_) => break,     // nobody reads: the server stopped taking bytes
        }
    }
    assert!(
        offered < 50 * 1024 * 1024,
        "the server kept reading a frame it must refuse"
    );
    let grown = rss_kib(server.child.id()).saturating_sub(before);
    // What this guards against: a server that reserves and fills what the header declares
    // (1 GiB), or buffers what it reads (it would have taken all 50 MB above). The idle
    // server's own background work moves RSS by up to ~6 MiB in mimalloc's steps (seen
    // 0.2–6.3 MiB over 20 runs, with ~4 MB offered), so the bar sits well above that noise
    // and well below either failure.
    assert!(grown < 32 * 1024, "server RSS grew by {grown} KiB");
    // The server is fine.
    assert!(
        server
            .client
            .call("GET", "/healthz", None, None)
            .await
            .unwrap()
            .ok()
    );
}

#[actix_web::test]
async fn the_seventeenth_socket_of_one_subject_is_refused_at_the_handshake() {
    let app = spawn_app().await;
    let (_, token) = app.customer().await;
    let mut open = Vec::new();
    for _ in 0..16 {
        open.push(app.ws(&token).await);
    }
    let mut stream = raw::connect(app.client.base(), false).await;
    let head = raw::upgrade(&mut stream, &format!("/v1/ws?token={token}")).await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
    // Another customer is not affected; closing one socket frees a place.
    let (_, other) = app.customer().await;
    let _other = app.ws(&other).await;
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut stream = raw::connect(app.client.base(), false).await;
    let head = raw::upgrade(&mut stream, &format!("/v1/ws?token={token}")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

#[actix_web::test]
async fn handshakes_are_rate_limited_per_subject() {
    let app = spawn_app_with(Options {
        rate_ws_upgrades_per_sec: 0.5,
        ..Options::default()
    })
    .await;
    let (_, token) = app.customer().await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let mut stream = raw::connect(app.client.base(), false).await;
        let head = raw::upgrade(&mut stream, &format!("/v1/ws?token={token}")).await;
        statuses.push(head.get(9..12).unwrap_or("").to_owned());
    }
    // A bucket of 5 (10 s of 0.5/s): the rest are 429 at the handshake.
    assert_eq!(
        statuses.iter().filter(|s| *s == "101").count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == "429").count(),
        3,
        "{statuses:?}"
    );
}

#[actix_web::test]
async fn a_socket_that_never_reads_is_cut_and_its_backlog_freed() {
    let app = spawn_app_with(Options {
        ws_write_timeout_secs: 2,
        ..Options::default()
    })
    .await;
    let mut ops = raw::connect(app.client.base(), true).await;
    let head = raw::upgrade(&mut ops, &format!("/v1/ws?token={}", app.ops)).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // Every rider move is pushed to ops; this ops client reads nothing.
    let (_, rider) = app.available_rider_at(north(10.0)).await;
    let mut ws = app.ws(&rider).await;
    for i in 0..12_000 {
        ws.send(json!({"type": "location", "lat": 12.9716 + f64::from(i) * 1e-6, "lng": 77.5946}))
            .await;
    }
    // The flood is queued by now; give the server its write timeout to notice, reading
    // nothing meanwhile (reading would unblock it).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let closed = raw::closed_within(&mut ops, Duration::from_secs(10)).await;

    let m = app
        .client
        .call("GET", "/metrics", None, None)
        .await
        .unwrap();
    let m = m
        .body
        .as_str()
        .unwrap_or("")
        .lines()
        .filter(|l| l.contains("ws_"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(closed, "the server kept a socket that reads nothing: {m}");
    let cut = app.client.metric(&app.ops, "dabba_ws_dropped_total").await;
    assert!(
        cut.is_some()
            || app
                .client
                .call("GET", "/metrics", None, None)
                .await
                .unwrap()
                .body
                .as_str()
                .unwrap_or("")
                .contains("dabba_ws_dropped_total")
    );
}

#[actix_web::test]
async fn a_socket_whose_pongs_stop_is_closed() {
    let app = spawn_app_with(Options {
        ws_heartbeat_secs: 1,
        ..Options::default()
    })
    .await;
    let (_, token) = app.customer().await;
    let mut stream = raw::connect(app.client.base(), false).await;
    let head = raw::upgrade(&mut stream, &format!("/v1/ws?token={token}")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // Pings arrive and are never answered: cut after two beats and a half.
    assert!(raw::closed_within(&mut stream, Duration::from_secs(6)).await);
    // A client that answers pings (the typed client does) stays.
    let mut ws = app.ws(&token).await;
    assert!(
        ws.silent_for(Duration::from_secs(4)).await,
        "a live client was dropped"
    );
}

#[actix_web::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_with_408() {
    let app = spawn_app_with(Options {
        body_timeout_secs: 2,
        ..Options::default()
    })
    .await;
    let mut stream = raw::connect(app.client.base(), false).await;
    let head = format!(
        "POST /v1/riders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        app.ops
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let trickle = async {
        for _ in 0..100 {
            if stream.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
    let answer = raw::read_head(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(raw::closed_within(&mut stream, Duration::from_secs(5)).await);
}
