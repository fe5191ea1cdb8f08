//! login: `LoginService` end to end in-process (body → store → pair → JSON answer) with
//! `PlaintextUser` and with `Argon2Store`, and `RefreshService` (bearer → verify → mint); and the
//! second factor: a login with a TOTP code against one without, with an Argon2id password hash
//! (what the second factor must stay small against: at most 1.1×) and with a plaintext compare,
//! their ratios measured interleaved after criterion's figures.
//!
//! `cargo bench --bench login`

mod common;

use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Request, StatusCode};
use http_body_util::Full;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tower::Service;

use tower_jwt_login::factor::{FactorKey, MemoryFactorStore, SecondFactor, totp_code};
use tower_jwt_login::login::{LoginService, RefreshService};
use tower_jwt_login::store::{
    Argon2Store, CredentialStore, Credentials, PlaintextUser, hash_password, verify_password,
};

fn login_request() -> Request<Full<Bytes>> {
    let body = format!(
        "{{\"username\":\"{}\",\"password\":\"{}\"}}",
        common::USER,
        common::PASSWORD
    );
    Request::post("/api/login")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn login(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let jwt = common::jwt();

    let mut plaintext = LoginService::new(
        jwt.clone(),
        PlaintextUser::new(common::USER, common::PASSWORD),
    );
    let argon2 = Argon2Store::new()
        .with_password(common::USER, common::PASSWORD)
        .unwrap();
    let mut argon2 = LoginService::new(jwt.clone(), argon2);
    let mut refresh = RefreshService::new(jwt.clone());
    let refresh_token = jwt.issue_pair(common::USER).refresh_token;
    let refresh_request = || {
        Request::get("/api/login/refresh")
            .header(AUTHORIZATION, format!("Bearer {refresh_token}"))
            .body(())
            .unwrap()
    };

    for res in [
        rt.block_on(plaintext.call(login_request())).unwrap(),
        rt.block_on(argon2.call(login_request())).unwrap(),
    ] {
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = common::poll_now(refresh.call(refresh_request())).unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let mut group = c.benchmark_group("login");
    group.bench_function("LoginService PlaintextUser", |b| {
        b.iter_batched(
            login_request,
            |req| rt.block_on(plaintext.call(req)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("RefreshService", |b| {
        b.iter_batched(
            refresh_request,
            |req| common::poll_now(refresh.call(req)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // Argon2id with its default parameters costs tens of milliseconds by design: few samples.
    let mut group = c.benchmark_group("login-argon2");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("LoginService Argon2Store", |b| {
        b.iter_batched(
            login_request,
            |req| rt.block_on(argon2.call(req)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Any username with the bench's password, checked against one Argon2id hash (`argon2`) or
/// compared in clear: every login of the second-factor benches is a user of its own, since each
/// code logs in once per user.
struct AnyUser {
    phc: Option<String>,
}

impl CredentialStore for AnyUser {
    type Error = std::convert::Infallible;

    async fn authenticate(&self, c: &Credentials) -> Result<Option<String>, Self::Error> {
        let ok = match &self.phc {
            Some(phc) => verify_password(c.password(), phc),
            None => c.password() == common::PASSWORD,
        };
        Ok(ok.then(|| c.username().to_owned()))
    }
}

fn login_body(user: &str, code: Option<&str>) -> Request<Full<Bytes>> {
    let code = code.map_or(String::new(), |c| format!(",\"totp_code\":\"{c}\""));
    let body = format!(
        "{{\"username\":\"{user}\",\"password\":\"{}\"{code}}}",
        common::PASSWORD
    );
    Request::post("/api/login")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// The second factor's login benches: (name, logins without it, logins of enrolled users with
/// a code, a fresh enrolled user's request).
struct FactorBench {
    rt: tokio::runtime::Runtime,
    without: LoginService<AnyUser>,
    with: LoginService<AnyUser>,
    factor: SecondFactor,
    clock: Arc<AtomicU64>,
    users: u64,
}

impl FactorBench {
    fn new(argon2: bool) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let phc = || argon2.then(|| hash_password(common::PASSWORD).unwrap());
        let jwt = common::jwt();
        let clock = Arc::new(AtomicU64::new(common::now()));
        let time = Arc::clone(&clock);
        let factor = rt
            .block_on(
                SecondFactor::builder(MemoryFactorStore::new(), FactorKey::random())
                    .clock(move || time.load(Ordering::Relaxed))
                    .build(),
            )
            .unwrap();
        FactorBench {
            without: LoginService::new(jwt.clone(), AnyUser { phc: phc() }).throttle(None),
            with: LoginService::new(jwt, AnyUser { phc: phc() })
                .throttle(None)
                .second_factor(factor.clone()),
            rt,
            factor,
            clock,
            users: 0,
        }
    }

    /// Enrols a new user (setup and enable with one step's code) and answers its login request
    /// with the next step's code, the clock on that step.
    fn enrolled_login(&mut self) -> Request<Full<Bytes>> {
        self.users += 1;
        let user = format!("user{}", self.users);
        let t = self.clock.load(Ordering::Relaxed);
        let setup = self.rt.block_on(self.factor.setup(&user)).unwrap();
        let enable = totp_code(setup.secret(), t).unwrap();
        self.rt
            .block_on(self.factor.enable(&user, &enable))
            .unwrap();
        let code = totp_code(setup.secret(), t + 30).unwrap();
        login_body(&user, Some(&code))
    }

    fn login_with(&mut self, req: Request<Full<Bytes>>) {
        let t = self.clock.load(Ordering::Relaxed);
        self.clock.store(t + 30, Ordering::Relaxed);
        let res = self.rt.block_on(self.with.call(req)).unwrap();
        self.clock.store(t, Ordering::Relaxed);
        assert_eq!(res.status(), StatusCode::OK);
    }

    fn login_without(&mut self) {
        let res = self
            .rt
            .block_on(self.without.call(login_body("plain", None)))
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
}

fn second_factor(c: &mut Criterion) {
    for (argon2, group_name, rounds, iters) in [
        (true, "login-totp-argon2", 15, 4),
        (false, "login-totp-plaintext", 30, 300),
    ] {
        let mut bench = FactorBench::new(argon2);
        let req = bench.enrolled_login();
        bench.login_with(req);
        bench.login_without();

        let mut group = c.benchmark_group(group_name);
        if argon2 {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(5));
        }
        let bench = std::cell::RefCell::new(bench);
        group.bench_function("without a second factor", |b| {
            b.iter(|| bench.borrow_mut().login_without())
        });
        group.bench_function("with a TOTP code", |b| {
            b.iter_batched(
                || bench.borrow_mut().enrolled_login(),
                |req| bench.borrow_mut().login_with(req),
                BatchSize::SmallInput,
            )
        });
        group.finish();

        // Interleaved (under `cargo bench` only): the enrolled users' requests are made before
        // the measurement.
        if !std::env::args().any(|arg| arg == "--bench") {
            continue;
        }
        let mut requests: Vec<_> = (0..rounds * iters)
            .map(|_| bench.borrow_mut().enrolled_login())
            .collect();
        common::interleaved(
            group_name,
            rounds,
            iters,
            &mut [
                ("login without a second factor", &mut || {
                    bench.borrow_mut().login_without()
                }),
                ("login with a TOTP code", &mut || {
                    let req = requests.pop().expect("one request per login");
                    bench.borrow_mut().login_with(req)
                }),
            ],
        );
    }
}

criterion_group!(benches, login, second_factor);
criterion_main!(benches);
