//! The rider index against what people use instead, same riders, same queries, one run:
//! Redis `GEOSEARCH … BYRADIUS 5 km ASC COUNT k` (the seed's stack) and PostGIS KNN
//! (`ORDER BY geom <-> point` with `ST_DWithin`). Lookups ask for the nearest available rider
//! within 5 km not yet offered the order (dabba excludes in the index walk; Redis and PostGIS
//! fetch a few candidates and the caller skips the excluded ones). Updates move one rider.
//!
//! ```sh
//! bash benches/compare.sh          # installs PostGIS if needed, then runs this
//! ```
//! `BENCH_RIDERS` (default 320000), `BENCH_QUERIES` (default 2000), `BENCH_PG_URL`,
//! `BENCH_REDIS_URL`.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Connection;

use dabba::domain::{LatLng, RiderId};
use dabba::geo::PointIndex;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn point(rng: &mut StdRng) -> LatLng {
    LatLng::parse(
        12.97 + rng.random_range(-0.18..0.18),
        77.59 + rng.random_range(-0.18..0.18),
    )
    .unwrap()
}

struct Result {
    name: &'static str,
    lookups_per_s: f64,
    updates_per_s: f64,
}

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("geo_compare: run it with `bash benches/compare.sh`");
        return Ok(());
    }
    let riders: usize = env_or("BENCH_RIDERS", 320_000);
    let queries: usize = env_or("BENCH_QUERIES", 2_000);
    let pg_admin = std::env::var("BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let redis_url =
        std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut rng = StdRng::seed_from_u64(11);
    let fleet: Vec<(RiderId, LatLng)> = (0..riders)
        .map(|_| (RiderId::new(), point(&mut rng)))
        .collect();
    let qs: Vec<LatLng> = (0..queries).map(|_| point(&mut rng)).collect();
    let moves: Vec<(usize, LatLng)> = (0..queries)
        .map(|_| (rng.random_range(0..riders), point(&mut rng)))
        .collect();
    let mut index = PointIndex::bulk_load(fleet.iter().copied());
    // The three nearest riders of each query were already offered the order.
    let excluded: Vec<HashSet<RiderId>> = qs
        .iter()
        .map(|q| {
            index
                .all_within(*q, 400.0)
                .into_iter()
                .take(3)
                .map(|(id, _)| id)
                .collect()
        })
        .collect();
    let mut results = Vec::new();

    // dabba's index.
    let t = Instant::now();
    let mut found = 0;
    for (q, ex) in qs.iter().zip(&excluded) {
        found += index
            .nearest_within(*q, 5_000.0, |id| ex.contains(&id))
            .is_some() as usize;
    }
    let lookups = queries as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for (i, at) in &moves {
        index.upsert(fleet[*i].0, *at);
    }
    results.push(Result {
        name: "dabba R-tree (in process)",
        lookups_per_s: lookups,
        updates_per_s: queries as f64 / t.elapsed().as_secs_f64(),
    });
    println!("dabba: {found}/{queries} queries found a rider");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Redis GEOSEARCH.
        let client = redis::Client::open(redis_url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await.context("connecting to Redis")?;
        let key = "dabba:bench:riders";
        let _: () = redis::cmd("DEL").arg(key).query_async(&mut conn).await?;
        for chunk in fleet.chunks(10_000) {
            let mut cmd = redis::cmd("GEOADD");
            cmd.arg(key);
            for (id, at) in chunk {
                cmd.arg(at.lng).arg(at.lat).arg(id.to_string());
            }
            let _: i64 = cmd.query_async(&mut conn).await?;
        }
        let t = Instant::now();
        for (q, ex) in qs.iter().zip(&excluded) {
            let ids: Vec<String> = redis::cmd("GEOSEARCH")
                .arg(key).arg("FROMLONLAT").arg(q.lng).arg(q.lat)
                .arg("BYRADIUS").arg(5).arg("km").arg("ASC").arg("COUNT").arg(ex.len() + 1)
                .query_async(&mut conn)
                .await?;
            let _ = ids.iter().find(|id| !ex.iter().any(|e| e.to_string() == **id));
        }
        let lookups = queries as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (i, at) in &moves {
            let _: i64 = redis::cmd("GEOADD").arg(key).arg(at.lng).arg(at.lat).arg(fleet[*i].0.to_string()).query_async(&mut conn).await?;
        }
        results.push(Result { name: "Redis GEOSEARCH (loopback)", lookups_per_s: lookups, updates_per_s: queries as f64 / t.elapsed().as_secs_f64() });
        let _: () = redis::cmd("DEL").arg(key).query_async(&mut conn).await?;

        // PostGIS KNN.
        let mut admin = sqlx::PgConnection::connect(&pg_admin).await?;
        sqlx::query("DROP DATABASE IF EXISTS dabba_bench_postgis WITH (FORCE)").execute(&mut admin).await?;
        sqlx::query("CREATE DATABASE dabba_bench_postgis").execute(&mut admin).await?;
        let (prefix, _) = pg_admin.rsplit_once('/').context("admin URL has a database")?;
        let mut pg = sqlx::PgConnection::connect(&format!("{prefix}/dabba_bench_postgis")).await?;
        sqlx::query("CREATE EXTENSION postgis").execute(&mut pg).await.context("PostGIS (run benches/compare.sh)")?;
        sqlx::query("CREATE TABLE riders (id text PRIMARY KEY, geom geography(Point, 4326) NOT NULL)").execute(&mut pg).await?;
        for chunk in fleet.chunks(20_000) {
            sqlx::query("INSERT INTO riders SELECT id, ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography FROM UNNEST($1::text[], $2::float8[], $3::float8[]) AS t(id, lng, lat)")
                .bind(chunk.iter().map(|(id, _)| id.to_string()).collect::<Vec<_>>())
                .bind(chunk.iter().map(|(_, at)| at.lng).collect::<Vec<_>>())
                .bind(chunk.iter().map(|(_, at)| at.lat).collect::<Vec<_>>())
                .execute(&mut pg)
                .await?;
        }
        sqlx::query("CREATE INDEX riders_geom ON riders USING gist (geom)").execute(&mut pg).await?;
        sqlx::query("ANALYZE riders").execute(&mut pg).await?;
        let t = Instant::now();
        for (q, ex) in qs.iter().zip(&excluded) {
            let excluded: Vec<String> = ex.iter().map(|e| e.to_string()).collect();
            let _: Option<String> = sqlx::query_scalar(
                "SELECT id FROM riders
                 WHERE ST_DWithin(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography, 5000) AND NOT id = ANY($3)
                 ORDER BY geom <-> ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography LIMIT 1",
            )
            .bind(q.lng)
            .bind(q.lat)
            .bind(&excluded)
            .fetch_optional(&mut pg)
            .await?;
        }
        let lookups = queries as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (i, at) in &moves {
            sqlx::query("UPDATE riders SET geom = ST_SetSRID(ST_MakePoint($2, $3), 4326)::geography WHERE id = $1")
                .bind(fleet[*i].0.to_string())
                .bind(at.lng)
                .bind(at.lat)
                .execute(&mut pg)
                .await?;
        }
        results.push(Result { name: "PostGIS KNN (loopback)", lookups_per_s: lookups, updates_per_s: queries as f64 / t.elapsed().as_secs_f64() });
        anyhow::Ok(())
    })?;

    println!("\n{riders} riders, {queries} lookups and {queries} position updates each, one run\n");
    println!("| index | lookups/s | ratio | position updates/s | ratio |");
    println!("|---|---:|---:|---:|---:|");
    let (base_l, base_u) = (results[0].lookups_per_s, results[0].updates_per_s);
    for r in &results {
        println!(
            "| {} | {:.0} | {:.1}× | {:.0} | {:.1}× |",
            r.name,
            r.lookups_per_s,
            base_l / r.lookups_per_s,
            r.updates_per_s,
            base_u / r.updates_per_s
        );
    }
    println!("\n(ratio: how many times faster dabba's index is)");
    Ok(())
}
