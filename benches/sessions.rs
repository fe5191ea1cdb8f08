//! sessions: what sessions cost an instance.
//!
//! - `sessions/…`: the layer's cost with sessions on — the local revocation check — against the
//!   layer without sessions (target: ≤ 1.1 ×), with an empty set, 1,000 and 100,000 revoked
//!   sessions. No I/O: the stores only write into the set the layer reads. The request is built
//!   outside the timed part; the futures answer at once, polled without a runtime.
//! - `revocations/…`: one write into a set of 100,000 entries (a logout elsewhere in the fleet,
//!   as the Redis store applies it), the unit of an instance's work at 10,000 logouts a minute
//!   across a fleet (~170 writes a second).
//! - `end_all/…`: "log out everywhere" of one subject with 20,000 sessions — 20,000 revocations
//!   applied at once — on the memory store, and (feature `redis`) on a Redis store, measured
//!   until its answer; the time until a second instance has applied it, and the longest stall of
//!   the runtime thread meanwhile (everything on one current-thread runtime, so any blocking
//!   shows), are printed after the group.
//! - `scale` (feature `redis`, only when asked: `-- scale`): one instance holding 100,000 live
//!   entries receives 170 published revocations a second for 60 s (`SESSIONS_SCALE_SECONDS`);
//!   prints the CPU time its threads spent, as a share of one core.
//!
//! `cargo bench --bench sessions --features redis` (Redis on 127.0.0.1:6379; keys under a
//! prefix of their own, deleted after) and `cargo bench --bench sessions --features redis -- scale`.

mod common;

use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode};
use http::StatusCode;
use tower::Layer;
use tower_jwt_login::auth::JwtAuthLayer;
use tower_jwt_login::session::{
    MemorySessionStore, NewSession, Revocations, SessionStore, new_session_id,
};
use tower_jwt_login::{Grant, TokenUse};

/// Far enough that nothing expires during a bench.
fn far() -> u64 {
    common::now() + 7 * 86_400
}

/// A set of `sessions` revoked sessions and `subjects` subjects with a "not before".
fn filled(sessions: usize, subjects: usize) -> Revocations {
    let set = Revocations::new();
    let until = far();
    for _ in 0..sessions {
        set.revoke_session(&new_session_id(), until);
    }
    for i in 0..subjects {
        set.revoke_subject_before(&format!("user-{i}"), 1, until);
    }
    set
}

fn layer(c: &mut Criterion) {
    let jwt = common::jwt();
    let sid = new_session_id();
    let token = jwt
        .issue(&Grant::new(common::USER).session(&sid))
        .tokens
        .access_token;
    let bearer = common::bearer(&token);
    assert_eq!(
        jwt.verify(&token, TokenUse::Access).unwrap().session_id(),
        Some(sid.as_str())
    );

    let mut off = JwtAuthLayer::new(jwt.clone()).layer(common::inner());
    let mut on_empty = JwtAuthLayer::new(jwt.clone())
        .revocations(Revocations::new())
        .layer(common::inner());
    let mut on_1000 = JwtAuthLayer::new(jwt.clone())
        .revocations(filled(1000, 100))
        .layer(common::inner());
    let mut on_100k = JwtAuthLayer::new(jwt.clone())
        .revocations(filled(100_000, 1000))
        .layer(common::inner());
    for svc in [&mut off, &mut on_empty, &mut on_1000, &mut on_100k] {
        let res = common::drive(svc, common::request(&bearer));
        assert_eq!(res.status(), StatusCode::OK);
    }
    // The check is real: revoking this session refuses the token.
    let revoked = filled(100_000, 1000);
    revoked.revoke_session(&sid, far());
    let mut refusing = JwtAuthLayer::new(jwt.clone())
        .revocations(revoked)
        .layer(common::inner());
    let res = common::drive(&mut refusing, common::request(&bearer));
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let mut group = c.benchmark_group("sessions");
    for (name, svc) in [
        ("JwtAuthLayer, sessions off", &mut off),
        ("JwtAuthLayer, sessions on, empty set", &mut on_empty),
        ("JwtAuthLayer, sessions on, 1000 revoked", &mut on_1000),
        ("JwtAuthLayer, sessions on, 100,000 revoked", &mut on_100k),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || common::request(&bearer),
                |req| common::drive(svc, req),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn writes(c: &mut Criterion) {
    let set = filled(100_000, 1000);
    // Revocations of 10,000 other sessions, over and over with a later expiry each time, so
    // that every one is a real write and the set stays at ~110,000 entries.
    let pool: Vec<String> = (0..10_000).map(|_| new_session_id()).collect();
    let base = far();
    let mut n = 0usize;
    let mut group = c.benchmark_group("revocations");
    group.bench_function("one revocation into 100,000 entries", |b| {
        b.iter(|| {
            n += 1;
            set.revoke_session(&pool[n % pool.len()], base + n as u64);
        })
    });
    group.finish();
    assert!(set.len() <= 111_000, "{}", set.len());
}

/// The longest gap between the wake-ups of a task that sleeps 1 ms at a time, on the same
/// current-thread runtime as the work: how long the runtime thread was held at once.
struct StallMeter {
    longest: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl StallMeter {
    fn start() -> Self {
        let longest = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let record = longest.clone();
        let task = tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let now = Instant::now();
                let gap = u64::try_from((now - last).as_micros()).unwrap_or(u64::MAX);
                record.fetch_max(gap, std::sync::atomic::Ordering::Relaxed);
                last = now;
            }
        });
        StallMeter { longest, task }
    }

    /// The longest gap beyond the 1 ms sleep.
    fn stop(self) -> Duration {
        self.task.abort();
        let longest = self.longest.load(std::sync::atomic::Ordering::Relaxed);
        Duration::from_micros(longest).saturating_sub(Duration::from_millis(1))
    }
}

const SESSIONS: usize = 20_000;

/// The longest stall of an idle runtime over `length` (at least 20 ms): what a busy machine
/// alone does to the meter.
async fn idle_stall(length: Duration) -> Duration {
    let meter = StallMeter::start();
    tokio::time::sleep(length.max(Duration::from_millis(20))).await;
    meter.stop()
}

/// Ten runs, one `end_all` each (each needs 20,000 fresh sessions first).
fn few_runs(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_millis(10));
}

fn summary(what: &str, samples: &mut [Duration]) {
    samples.sort();
    if samples.is_empty() {
        return;
    }
    println!(
        "{what}: min {:?}, median {:?}, max {:?} ({} runs)",
        samples[0],
        samples[samples.len() / 2],
        samples[samples.len() - 1],
        samples.len()
    );
}

fn end_all_memory(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let jwt = common::jwt();
    let mut group = c.benchmark_group("end_all");
    few_runs(&mut group);
    for existing in [0usize, 100_000] {
        let mut stalls = Vec::new();
        let mut idle = Vec::new();
        let name = format!("memory store, {SESSIONS} sessions, set of {existing} entries");
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let store = MemorySessionStore::new(&jwt).max_sessions_per_subject(SESSIONS);
                    let exp = far();
                    rt.block_on(async {
                        let until = far();
                        for _ in 0..existing {
                            store.revocations().revoke_session(&new_session_id(), until);
                        }
                        for _ in 0..SESSIONS {
                            let sid = new_session_id();
                            store
                                .start(NewSession::new(&sid, "alice", "j", exp))
                                .await
                                .unwrap();
                        }
                        let meter = StallMeter::start();
                        tokio::task::yield_now().await;
                        let started = Instant::now();
                        store.end_all("alice").await.unwrap();
                        let took = started.elapsed();
                        total += took;
                        stalls.push(meter.stop());
                        idle.push(idle_stall(took).await);
                    });
                    assert_eq!(store.revocations().len(), existing + SESSIONS + 1);
                }
                total
            })
        });
        summary(
            &format!("{name}: longest runtime stall during end_all"),
            &mut stalls,
        );
        summary(
            &format!("{name}: longest runtime stall idle, as long (the machine's noise)"),
            &mut idle,
        );
    }
    group.finish();
}

#[cfg(feature = "redis")]
mod redis_benches {
    use super::*;
    use futures_util::StreamExt;
    use tower_jwt_login::redis::RedisOptions;
    use tower_jwt_login::redis::client::{self, AsyncCommands};
    use tower_jwt_login::session::RedisSessionStore;

    pub const URL: &str = "redis://127.0.0.1:6379";

    pub async fn store(prefix: &str) -> RedisSessionStore {
        RedisSessionStore::connect(URL, RedisOptions::new().prefix(prefix), &common::jwt())
            .await
            .unwrap()
            .max_sessions_per_subject(SESSIONS + 1)
    }

    /// Deletes every key under `prefix`.
    pub async fn clean(prefix: &str) {
        let client = client::Client::open(URL).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = con.keys(format!("{prefix}*")).await.unwrap();
        for chunk in keys.chunks(1000) {
            let _: () = con.unlink(chunk).await.unwrap();
        }
    }

    pub fn end_all_redis(c: &mut Criterion) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut group = c.benchmark_group("end_all");
        few_runs(&mut group);
        let mut stalls = Vec::new();
        let mut idle = Vec::new();
        let mut elsewhere = Vec::new();
        group.bench_function(format!("Redis store, {SESSIONS} sessions"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    rt.block_on(async {
                        let prefix = format!("tjl-bench-{}:", new_session_id());
                        let (a, other) = (store(&prefix).await, store(&prefix).await);
                        let exp = far();
                        let sids: Vec<String> = (0..SESSIONS).map(|_| new_session_id()).collect();
                        futures_util::stream::iter(&sids)
                            .for_each_concurrent(256, |sid| {
                                let a = &a;
                                async move {
                                    let session = NewSession::new(sid, "alice", "j", exp);
                                    a.start(session).await.unwrap();
                                }
                            })
                            .await;
                        let last = sids.last().unwrap().clone();
                        let meter = StallMeter::start();
                        tokio::task::yield_now().await;
                        let started = Instant::now();
                        a.end_all("alice").await.unwrap();
                        total += started.elapsed();
                        while !(other.revocations().is_session_revoked(&last)
                            && other.revocations().is_session_revoked(&sids[0]))
                        {
                            tokio::time::sleep(Duration::from_micros(200)).await;
                        }
                        let took = started.elapsed();
                        elsewhere.push(took);
                        stalls.push(meter.stop());
                        idle.push(idle_stall(took).await);
                        assert!(
                            sids.iter()
                                .all(|s| other.revocations().is_session_revoked(s))
                        );
                        drop((a, other));
                        clean(&prefix).await;
                    });
                }
                total
            })
        });
        group.finish();
        summary(
            &format!("end_all/Redis store, {SESSIONS} sessions: applied by a second instance"),
            &mut elsewhere,
        );
        summary(
            &format!(
                "end_all/Redis store, {SESSIONS} sessions: longest runtime stall (both instances)"
            ),
            &mut stalls,
        );
        summary(
            &format!(
                "end_all/Redis store, {SESSIONS} sessions: longest runtime stall idle, as long \
                 (the machine's noise)"
            ),
            &mut idle,
        );
    }

    /// CPU time (user + system) of this process's threads whose name starts with `prefix`.
    fn cpu_of_threads(prefix: &str) -> Duration {
        let mut ticks = 0u64;
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            if !stat[open + 1..close].starts_with(prefix) {
                continue;
            }
            let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
            // Fields 14 and 15 of the line (utime, stime) are 11 and 12 after the name.
            ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        }
        // USER_HZ is 100 on Linux.
        Duration::from_millis(ticks * 10)
    }

    /// One instance with 100,000 live entries, receiving 170 revocations a second.
    pub fn scale() {
        let seconds: u64 = std::env::var("SESSIONS_SCALE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60);
        let prefix = format!("tjl-bench-{}:", new_session_id());
        let until = far();
        let publisher = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // 100,000 revoked sessions in Redis, as a fleet logging out 10,000 times a minute keeps.
        publisher.block_on(async {
            let client = client::Client::open(URL).unwrap();
            let mut con = client.get_multiplexed_async_connection().await.unwrap();
            let key = format!("{prefix}{{sessions}}:revoked");
            for _ in 0..100 {
                let mut pipe = client::pipe();
                for _ in 0..1000 {
                    pipe.cmd("ZADD").arg(&key).arg(until).arg(new_session_id());
                }
                pipe.query_async::<()>(&mut con).await.unwrap();
            }
        });
        // The instance: its own current-thread runtime on a thread named `instance`.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let instance_prefix = prefix.clone();
        let instance = std::thread::Builder::new()
            .name("instance".to_owned())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .thread_name("instance-blocking")
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let store = store(&instance_prefix).await;
                    ready_tx.send(store.revocations().clone()).unwrap();
                    let _ = stop_rx.await;
                    drop(store);
                });
            })
            .unwrap();
        let revocations = ready_rx.recv().unwrap();
        assert!(revocations.len() >= 100_000, "{}", revocations.len());
        // Past the re-read after start-up.
        std::thread::sleep(Duration::from_secs(2));
        let before = cpu_of_threads("instance");
        let started = Instant::now();
        let published = publisher.block_on(async {
            let client = client::Client::open(URL).unwrap();
            let mut con = client.get_multiplexed_async_connection().await.unwrap();
            let channel = format!("{prefix}{{sessions}}:events");
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / 170));
            let mut n = 0u64;
            while started.elapsed() < Duration::from_secs(seconds) {
                tick.tick().await;
                let event = format!("r {until} {}", new_session_id());
                let _: i64 = con.publish(&channel, event).await.unwrap();
                n += 1;
            }
            n
        });
        // Until the last ones are applied.
        let deadline = Instant::now() + Duration::from_secs(5);
        while revocations.len() < 100_000 + published as usize && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let elapsed = started.elapsed();
        let cpu = cpu_of_threads("instance").saturating_sub(before);
        let _ = stop_tx.send(());
        instance.join().unwrap();
        publisher.block_on(clean(&prefix));
        println!(
            "scale: {published} revocations in {elapsed:.1?} ({:.0}/s) into {} entries: the \
             instance's threads used {cpu:?} of CPU = {:.2} % of one core (incl. its periodic \
             full re-reads)",
            published as f64 / elapsed.as_secs_f64(),
            revocations.len(),
            100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
        );
    }
}

fn main() {
    let scale = std::env::args().skip(1).any(|a| a == "scale");
    if scale {
        #[cfg(feature = "redis")]
        redis_benches::scale();
        #[cfg(not(feature = "redis"))]
        println!("scale: needs --features redis");
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    layer(&mut c);
    writes(&mut c);
    end_all_memory(&mut c);
    #[cfg(feature = "redis")]
    redis_benches::end_all_redis(&mut c);
    c.final_summary();
}
