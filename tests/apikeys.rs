//! API keys with the in-memory stores (`Argon2Store` users, `MemoryApiKeyStore` keys), over
//! real HTTP on 127.0.0.1: the shared account suite (tests/accounts_suite), which tests/sql.rs
//! runs against PostgreSQL and SQLite too.
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
