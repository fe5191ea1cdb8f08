//! API keys and the password change with the in-memory stores (`Argon2Store` users,
//! `MemoryApiKeyStore` keys), over real HTTP on 127.0.0.1: the shared account suite
//! (tests/accounts_suite, by hand and through `LoginKit`), which tests/sql.rs runs against
//! PostgreSQL and SQLite too, and the example server without a database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts_suite;
mod common;

use std::sync::Arc;

use accounts_suite::Accounts;
use tower_jwt_login::apikey::MemoryApiKeyStore;
use tower_jwt_login::store::Argon2Store;

struct Memory {
    users: Arc<Argon2Store>,
    keys: Arc<MemoryApiKeyStore>,
}

fn memory() -> Memory {
    Memory {
        users: Arc::new(Argon2Store::new()),
        keys: Arc::new(MemoryApiKeyStore::new()),
    }
}

impl Accounts for Memory {
    type Creds = Arc<Argon2Store>;
    type Keys = Arc<MemoryApiKeyStore>;

    fn creds(&self) -> Arc<Self::Creds> {
        Arc::new(Arc::clone(&self.users))
    }
    fn keys(&self) -> Arc<Self::Keys> {
        Arc::new(Arc::clone(&self.keys))
    }
    async fn add_user(&self, name: &str, password: &str, roles: &[&str]) {
        self.users.users().add_user(name, password).unwrap();
        self.set_roles(name, roles).await;
    }
    async fn set_roles(&self, name: &str, roles: &[&str]) {
        // Sorted, as the SQL store answers them.
        let mut roles = roles.to_vec();
        roles.sort_unstable();
        assert_eq!(self.users.users().set_roles(name, roles), Ok(true));
    }
    async fn set_disabled(&self, name: &str, disabled: bool) {
        let users = self.users.users();
        assert!(if disabled {
            users.disable(name)
        } else {
            users.enable(name)
        });
    }
}

#[tokio::test]
async fn keys_are_created_listed_exchanged_and_revoked() {
    accounts_suite::keys_are_created_listed_exchanged_and_revoked(memory()).await;
}

#[tokio::test]
async fn a_key_carries_at_most_its_roles() {
    accounts_suite::a_key_carries_at_most_its_roles(memory()).await;
}

#[tokio::test]
async fn keys_of_a_disabled_user_stop_working() {
    accounts_suite::keys_of_a_disabled_user_stop_working(memory()).await;
}

#[tokio::test]
async fn another_users_key_is_not_found() {
    accounts_suite::another_users_key_is_not_found(memory()).await;
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    accounts_suite::an_expired_key_is_refused(memory()).await;
}

#[tokio::test]
async fn a_wrong_key_costs_what_a_wrong_password_costs() {
    accounts_suite::a_wrong_key_costs_what_a_wrong_password_costs(memory()).await;
}

#[tokio::test]
async fn bad_key_requests_get_clear_errors() {
    accounts_suite::bad_key_requests_get_clear_errors(memory()).await;
}

#[tokio::test]
async fn password_logins_through_the_store() {
    accounts_suite::password_logins_through_the_store(memory()).await;
}

#[tokio::test]
async fn kit_keys_refresh_with_their_roles_and_revoking_ends_their_session() {
    accounts_suite::kit_keys_refresh_with_their_roles_and_revoking_ends_their_session(memory())
        .await;
}

#[tokio::test]
async fn kit_keys_of_a_disabled_owner_stop() {
    accounts_suite::kit_keys_of_a_disabled_owner_stop(memory()).await;
}

#[tokio::test]
async fn kit_another_users_key_is_not_found() {
    accounts_suite::kit_another_users_key_is_not_found(memory()).await;
}

#[tokio::test]
async fn kit_password_change_ends_the_other_sessions() {
    accounts_suite::kit_password_change_ends_the_other_sessions(memory()).await;
}

#[tokio::test]
async fn kit_password_change_keeps_only_the_callers_session() {
    accounts_suite::kit_password_change_keeps_only_the_callers_session(memory()).await;
}

#[tokio::test]
async fn kit_password_change_without_a_session_list_ends_every_session() {
    accounts_suite::kit_password_change_without_a_session_list_ends_every_session(memory()).await;
}

/// The example server without a database serves keys and the password change for Core's one
/// user: keys in memory, a changed password in memory (the login then takes only the new one).
#[tokio::test]
async fn the_example_server_serves_keys_and_the_password_change_without_a_database() {
    use accounts_suite::{change_password, create, exchange, list, password_login, revoke};
    use common::{INVALID_CREDENTIALS, PASSWORD, USER, core_config, spawn_core};
    use serde_json::json;

    let addr = spawn_core(core_config(std::time::Duration::ZERO)).await;
    let reply = password_login(addr, USER, PASSWORD).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let admin = reply.json()["access_token"].as_str().unwrap().to_owned();
    let reply = create(addr, &admin, json!({ "name": "ci", "expires_in": 60 })).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let id = reply.json()["id"].as_str().unwrap().to_owned();
    let key = reply.json()["key"].as_str().unwrap().to_owned();
    let reply = exchange(addr, &key).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let reply = change_password(
        addr,
        &admin,
        json!({ "password": PASSWORD, "new_password": "a new admin password" }),
    )
    .await;
    assert_eq!((reply.status, reply.text()), (204, ""));
    let reply = password_login(addr, USER, PASSWORD).await;
    assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));
    let reply = password_login(addr, USER, "a new admin password").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    // The key does not depend on the password.
    assert_eq!(exchange(addr, &key).await.status, 200);
    assert_eq!(list(addr, &admin).await.json()[0]["id"], id.as_str());
    assert_eq!(revoke(addr, &admin, &id).await.status, 204);
    let reply = exchange(addr, &key).await;
    assert_eq!((reply.status, reply.text()), (401, INVALID_CREDENTIALS));
}

/// A refresh service without the key store refuses a key's refresh token, on the fast path of
/// a stateless refresh as on the others: it could neither see the key revoked nor keep the
/// key's restriction of the owner's roles.
#[tokio::test]
async fn a_refresh_without_the_key_store_refuses_a_keys_tokens() {
    use bytes::Bytes;
    use http::Request;
    use http_body_util::{BodyExt, Full};
    use tower::ServiceExt;
    use tower_jwt_login::apikey::{ApiKey, ApiKeyInfo, ApiKeyStore};
    use tower_jwt_login::login::{LoginService, RefreshService};
    use tower_jwt_login::store::PlaintextUser;

    let jwt = accounts_suite::jwt();
    let keys = Arc::new(MemoryApiKeyStore::new());
    let key = ApiKey::generate();
    let info = ApiKeyInfo::fresh("admin", "ci", None, None);
    keys.create(&info, &key.hash()).await.unwrap();
    let login = LoginService::new(jwt.clone(), PlaintextUser::new("admin", "pw"))
        .api_keys(Arc::clone(&keys))
        .failure_delay(std::time::Duration::ZERO);
    let req = Request::post("/api/login")
        .header("authorization", format!("Bearer {}", key.expose_secret()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = login.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let pair: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let refresh_token = pair["refresh_token"].as_str().unwrap().to_owned();

    let refresh = |service: RefreshService| {
        let req = Request::get("/api/login/refresh")
            .header("authorization", format!("Bearer {refresh_token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        async move {
            let res = service.oneshot(req).await.unwrap();
            let status = res.status();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            (status.as_u16(), String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let refused = (
        401,
        "{\"code\":401,\"message\":\"Unauthorized\",\"details\":[\"Missing or invalid JWT token\"]}\n"
            .to_owned(),
    );
    // Stateless, nothing to ask: the fast path.
    assert_eq!(refresh(RefreshService::new(jwt.clone())).await, refused);
    // With the key store: answered, and refused again once the key is revoked.
    let with_keys = RefreshService::new(jwt.clone()).api_keys(Arc::clone(&keys));
    assert_eq!(refresh(with_keys.clone()).await.0, 200);
    assert!(keys.revoke("admin", &info.id).await.unwrap());
    assert_eq!(refresh(with_keys).await, refused);
}
