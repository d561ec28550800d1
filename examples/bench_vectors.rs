//! Identity-matching latency in pgvector: 10,000 random 128-d identities (dlib face vector
//! size), top-5 searches through `VectorStore` (HNSW index), printed beside two exact
//! anchors over the same vectors: the same SQL with index scans switched off (a sequential
//! scan), and a linear scan in Rust. Recall@5 of the index against the exact answer is
//! printed too. `tools/bench-vectors` runs it.
//!
//! Works in a database of its own (`reelbase_bench_vectors_<pid>`), dropped at the end.
//! Usage: `bench_vectors [IDENTITIES] [QUERIES]` (defaults 10000, 500). The admin URL is
//! `postgres:///postgres` unless `REELBASE_BENCH_PG_ADMIN_URL` says otherwise.

use std::time::{Duration, Instant};

use reelbase::vectors::{Pgvector, Point, PointId, Search, VectorStore};
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection, PgPool};

const DIMENSION: usize = 128;
const COLLECTION: &str = "bench_identities";
const TOP: usize = 5;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let identities: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let queries: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(500);
    let admin = std::env::var("REELBASE_BENCH_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres:///postgres".into());
    let name = format!("reelbase_bench_vectors_{}", std::process::id());

    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("connect as admin");
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .expect("create the bench database");
    let mut url = url::Url::parse(&admin).expect("admin URL");
    url.set_path(&name);
    let outcome = run(url.as_str(), identities, queries).await;
    conn.execute(format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#).as_str())
        .await
        .expect("drop the bench database");
    outcome.expect("benchmark");
}

async fn run(url: &str, identities: usize, queries: usize) -> Result<(), String> {
    let migrator = PgConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    reelbase::db::migrations::migrate(migrator)
        .await
        .map_err(|e| e.to_string())?;
    let pool = PgPool::connect(url).await.map_err(|e| e.to_string())?;
    let store = VectorStore::Pgvector(Pgvector::new(pool.clone()));
    store
        .ensure_collection(COLLECTION, DIMENSION)
        .await
        .map_err(|e| e.to_string())?;

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let vectors: Vec<Vec<f32>> = (0..identities).map(|_| rng.vector()).collect();
    let loading = Instant::now();
    for (n, batch) in vectors.chunks(1000).enumerate() {
        let points: Vec<Point> = batch
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                id: PointId::Num((n * 1000 + i) as u64),
                vector: v.clone(),
                payload: json!({"name": format!("person {}", n * 1000 + i)}),
            })
            .collect();
        store
            .upsert(COLLECTION, &points)
            .await
            .map_err(|e| e.to_string())?;
    }
    let load_time = loading.elapsed();
    sqlx::query(&format!("VACUUM ANALYZE vectors_{COLLECTION}"))
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;

    // A probe is a known identity seen again: its vector plus noise, as a new photo of the
    // same face would give.
    let targets: Vec<u64> = (0..queries).map(|_| rng.below(identities) as u64).collect();
    let probes: Vec<Vec<f32>> = targets
        .iter()
        .map(|&t| {
            vectors[t as usize]
                .iter()
                .map(|x| x + 0.3 * rng.unit())
                .collect()
        })
        .collect();

    let (index_times, index_hits) = time_index(&store, &probes).await?;
    let sql_times = time_sql_scan(&pool, &probes).await?;
    let (rust_times, exact_hits) = time_rust_scan(&vectors, &probes);
    let recall = recall(&index_hits, &exact_hits);

    println!(
        "pgvector identity matching: {identities} identities x {DIMENSION}-d, top-{TOP}, {queries} probes"
    );
    println!(
        "loading: {:.2} s ({} upserts of 1,000)",
        load_time.as_secs_f64(),
        identities.div_ceil(1000)
    );
    println!("{:<38} {:>9} {:>9}", "", "p50 ms", "p99 ms");
    report("VectorStore::search (pgvector HNSW)", &index_times);
    report("anchor: SQL sequential scan (exact)", &sql_times);
    report("anchor: Rust linear scan (exact)", &rust_times);
    println!(
        "recall@{TOP} of the HNSW search against the exact answer: {:.3}",
        recall
    );
    let first = |hits: &[Vec<u64>]| {
        let right = hits
            .iter()
            .zip(&targets)
            .filter(|(h, t)| h.first() == Some(t));
        right.count() as f64 / targets.len().max(1) as f64
    };
    println!(
        "probed identity ranked first: HNSW {:.3}, exact {:.3}",
        first(&index_hits),
        first(&exact_hits)
    );
    Ok(())
}

async fn time_index(
    store: &VectorStore,
    probes: &[Vec<f32>],
) -> Result<(Vec<Duration>, Vec<Vec<u64>>), String> {
    // One untimed round warms the connection pool and PostgreSQL's caches.
    for probe in probes.iter().take(20) {
        let search = Search::new(probe.clone(), TOP);
        store
            .search(COLLECTION, &search)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut times = Vec::with_capacity(probes.len());
    let mut hits = Vec::with_capacity(probes.len());
    for probe in probes {
        let search = Search::new(probe.clone(), TOP);
        let started = Instant::now();
        let found = store
            .search(COLLECTION, &search)
            .await
            .map_err(|e| e.to_string())?;
        times.push(started.elapsed());
        hits.push(
            found
                .iter()
                .map(|h| match h.id {
                    PointId::Num(n) => n,
                    PointId::Uuid(_) => u64::MAX,
                })
                .collect(),
        );
    }
    Ok((times, hits))
}

/// The same query as the store's, with index scans off so PostgreSQL reads every row.
async fn time_sql_scan(pool: &PgPool, probes: &[Vec<f32>]) -> Result<Vec<Duration>, String> {
    let sql = format!(
        "SELECT id, 1 - (embedding <=> $1::real[]::vector) AS score FROM vectors_{COLLECTION} \
         ORDER BY embedding <=> $1::real[]::vector LIMIT {TOP}"
    );
    let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
    conn.execute("SET enable_indexscan = off")
        .await
        .map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(probes.len());
    for (i, probe) in probes.iter().enumerate() {
        let started = Instant::now();
        sqlx::query(&sql)
            .bind(probe)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
        if i >= 5 {
            times.push(started.elapsed());
        }
    }
    conn.execute("RESET enable_indexscan")
        .await
        .map_err(|e| e.to_string())?;
    Ok(times)
}

fn time_rust_scan(vectors: &[Vec<f32>], probes: &[Vec<f32>]) -> (Vec<Duration>, Vec<Vec<u64>>) {
    let norms: Vec<f32> = vectors.iter().map(|v| norm(v)).collect();
    let mut times = Vec::with_capacity(probes.len());
    let mut hits = Vec::with_capacity(probes.len());
    for probe in probes {
        let started = Instant::now();
        let probe_norm = norm(probe);
        let mut scored: Vec<(f32, u64)> = vectors
            .iter()
            .zip(&norms)
            .enumerate()
            .map(|(i, (v, n))| (dot(v, probe) / (n * probe_norm), i as u64))
            .collect();
        scored.select_nth_unstable_by(TOP - 1, |a, b| b.0.total_cmp(&a.0));
        scored.truncate(TOP);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        times.push(started.elapsed());
        hits.push(scored.into_iter().map(|(_, id)| id).collect());
    }
    (times, hits)
}

fn recall(found: &[Vec<u64>], exact: &[Vec<u64>]) -> f64 {
    let right: usize = found
        .iter()
        .zip(exact)
        .map(|(f, e)| f.iter().filter(|id| e.contains(id)).count())
        .sum();
    let total: usize = exact.iter().map(Vec::len).sum();
    right as f64 / total.max(1) as f64
}

fn report(label: &str, times: &[Duration]) {
    let mut ms: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    println!("{label:<38} {:>9.3} {:>9.3}", at(0.50), at(0.99));
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(v: &[f32]) -> f32 {
    dot(v, v).sqrt()
}

/// A small deterministic generator: the same identities on every run, no extra crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn vector(&mut self) -> Vec<f32> {
        (0..DIMENSION).map(|_| self.unit()).collect()
    }
}
