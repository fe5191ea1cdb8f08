//! Redis for the tests: the shared server on 127.0.0.1:6379 (with a unique key prefix per test)
//! and private `redis-server`s on free ports that a test may kill and restart.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tower_jwt_login::redis::client::{self, AsyncCommands};

pub const SHARED: &str = "redis://127.0.0.1:6379";

/// A prefix no other test uses: `tjl-test-<random>:`.
pub fn unique_prefix() -> String {
    format!("tjl-test-{}:", tower_jwt_login::session::new_session_id())
}

/// One command on a fresh connection to `url`.
pub async fn cmd<T: client::FromRedisValue>(url: &str, args: &[&str]) -> T {
    let client = client::Client::open(url).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = client::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut con).await.unwrap()
}

/// Every key under `prefix` with its PTTL in ms (-1 = none, -2 = gone).
pub async fn keys_with_pttl(url: &str, prefix: &str) -> Vec<(String, i64)> {
    let client = client::Client::open(url).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = con.keys(format!("{prefix}*")).await.unwrap();
    let mut out = Vec::new();
    for key in keys {
        let pttl: i64 = con.pttl(&key).await.unwrap();
        out.push((key, pttl));
    }
    out.sort();
    out
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private `redis-server --save "" --appendonly no` on a port of its own, killed on drop.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let mut redis = PrivateRedis {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, empty) on the same port and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "private redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL: no goodbye to the clients) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The sum of `calls` over every command in `INFO commandstats` but `info` and `ping` (the
/// sync task pings): the commands the server ran.
pub async fn commands_run(url: &str) -> u64 {
    let info: String = cmd(url, &["INFO", "commandstats"]).await;
    info.lines()
        .filter_map(|line| line.strip_prefix("cmdstat_"))
        .filter(|line| !line.starts_with("info:") && !line.starts_with("ping:"))
        .filter_map(|line| {
            let calls = line.split("calls=").nth(1)?;
            calls.split(',').next()?.parse::<u64>().ok()
        })
        .sum()
}

/// Polls `check` every 10 ms until it holds or `within` passes; returns how long it took.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Records what clients send to a server (`MONITOR`): one line per command a client sent, i.e.
/// per round trip (commands run inside a script are logged as `[… lua]` and left out, as are the
/// sync task's pings and re-reads).
pub struct Monitor {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    pub async fn start(url: &str) -> Self {
        use futures_util::StreamExt;
        let client = client::Client::open(url).unwrap();
        let monitor = client.get_async_monitor().await.unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let task = tokio::spawn(async move {
            let mut stream = monitor.into_on_message::<String>();
            while let Some(line) = stream.next().await {
                sink.lock().unwrap().push(line);
            }
        });
        // MONITOR is on once a command shows up in it.
        let probe = format!("probe-{}", tower_jwt_login::session::new_session_id());
        loop {
            let _: Option<String> = cmd(url, &["GET", &probe]).await;
            if lines.lock().unwrap().iter().any(|l| l.contains(&probe)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        lines.lock().unwrap().clear();
        Monitor { lines, task }
    }

    /// The client commands seen since the last call, without pings and re-reads.
    pub async fn take(&self) -> Vec<String> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::mem::take(&mut *self.lines.lock().unwrap())
            .into_iter()
            .filter(|l| !l.contains(" lua]"))
            .filter(|l| !l.contains("\"PING\"") && !l.contains("\"ping\""))
            .filter(|l| !l.contains("\"ZSCAN\""))
            .collect()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP forwarder to a Redis on 127.0.0.1 that can be shut: while shut, it takes connections
/// and drops them at once (the client sees the server as down), so a test decides when one
/// client may reconnect. Connections it forwards end when the server does.
pub struct Gate {
    pub port: u16,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Gate {
    pub async fn to(upstream: u16) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let gate = open.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    return;
                };
                if !gate.load(Ordering::SeqCst) {
                    drop(down);
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut up) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
            }
        });
        Gate { port, open, task }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn set_open(&self, open: bool) {
        self.open.store(open, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}
