//! Core-compatible configuration from environment variables.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use tower_jwt_login::config::{ConfigError, CoreAuthConfig, random_password};

fn load(vars: &[(&str, &str)]) -> Result<CoreAuthConfig, ConfigError> {
    let env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    CoreAuthConfig::default().with_lookup(|k| env.get(k).cloned())
}

#[test]
fn core_defaults_disable_auth() {
    let c = load(&[]).unwrap();
    assert!(!c.enable);
    assert_eq!(c.login_failure_delay, Duration::from_secs(5));
}

#[test]
fn go_parsebool_spellings() {
    for v in ["1", "t", "T", "TRUE", "true", "True"] {
        let c = load(&[
            ("CORE_API_AUTH_ENABLE", v),
            ("CORE_API_AUTH_USERNAME", "a"),
            ("CORE_API_AUTH_PASSWORD", "b"),
        ])
        .unwrap();
        assert!(c.enable, "{v}");
    }
    for v in ["0", "f", "F", "FALSE", "false", "False"] {
        assert!(!load(&[("CORE_API_AUTH_ENABLE", v)]).unwrap().enable, "{v}");
    }
    for v in ["yes", "on", "", "tRUE", " true"] {
        assert_eq!(
            load(&[("CORE_API_AUTH_ENABLE", v)]).unwrap_err(),
            ConfigError::InvalidBool {
                var: "CORE_API_AUTH_ENABLE"
            },
            "{v}"
        );
    }
}

#[test]
fn enabled_without_username_or_password_is_refused_clearly() {
    for vars in [
        vec![("CORE_API_AUTH_ENABLE", "true")],
        vec![
            ("CORE_API_AUTH_ENABLE", "true"),
            ("CORE_API_AUTH_USERNAME", "admin"),
        ],
        vec![
            ("CORE_API_AUTH_ENABLE", "true"),
            ("CORE_API_AUTH_PASSWORD", "x"),
        ],
        vec![
            ("CORE_API_AUTH_ENABLE", "true"),
            ("CORE_API_AUTH_USERNAME", "admin"),
            ("CORE_API_AUTH_PASSWORD", ""),
        ],
    ] {
        let err = load(&vars).unwrap_err();
        assert_eq!(err, ConfigError::MissingCredentials, "{vars:?}");
        let text = err.to_string();
        assert!(
            text.contains("CORE_API_AUTH_USERNAME") && text.contains("CORE_API_AUTH_PASSWORD"),
            "{text}"
        );
    }
}

#[test]
fn rs_aliases_and_core_precedence() {
    let c = load(&[
        ("CORE_API_AUTH_ENABLE", "true"),
        ("RS_USERNAME", "rs-user"),
        ("RS_PASSWORD", "rs-pass"),
    ])
    .unwrap();
    assert_eq!(c.username, "rs-user");
    assert_eq!(c.expose_password(), "rs-pass");
    let c = load(&[
        ("CORE_API_AUTH_ENABLE", "true"),
        ("RS_USERNAME", "rs-user"),
        ("CORE_API_AUTH_USERNAME", "core-user"),
        ("RS_PASSWORD", "rs-pass"),
        ("CORE_API_AUTH_PASSWORD", "core-pass"),
    ])
    .unwrap();
    assert_eq!(c.username, "core-user");
    assert_eq!(c.expose_password(), "core-pass");
}

#[test]
fn jwt_key_is_cores_derivation() {
    let c = load(&[
        ("CORE_API_AUTH_ENABLE", "true"),
        ("CORE_API_AUTH_USERNAME", "admin"),
        ("CORE_API_AUTH_PASSWORD", "datarhei"),
        ("CORE_API_AUTH_JWT_SECRET", "secretsecret"),
    ])
    .unwrap();
    assert_eq!(c.jwt_key().expose_secret(), b"admindatarheisecretsecret");
    // Without a secret: username + password + 32 random characters, made once for the settings
    // (and their clones: every key made from them is the same key), different for other settings.
    let vars = [
        ("CORE_API_AUTH_ENABLE", "true"),
        ("CORE_API_AUTH_USERNAME", "admin"),
        ("CORE_API_AUTH_PASSWORD", "datarhei"),
    ];
    let c = load(&vars).unwrap();
    let (k1, k2, k3) = (c.jwt_key(), c.jwt_key(), c.clone().jwt_key());
    assert_eq!(k1.expose_secret().len(), "admindatarhei".len() + 32);
    assert!(k1.expose_secret().starts_with(b"admindatarhei"));
    assert_eq!(k1.expose_secret(), k2.expose_secret());
    assert_eq!(k1.expose_secret(), k3.expose_secret());
    let other = load(&vars).unwrap().jwt_key();
    assert_ne!(k1.expose_secret(), other.expose_secret());
    // So tokens minted with one JwtConfig of these settings verify with another.
    let minted = c
        .jwt_config()
        .unwrap()
        .build()
        .unwrap()
        .issue_access("admin");
    let verifier = c.jwt_config().unwrap().build().unwrap();
    assert!(
        verifier
            .verify(&minted, tower_jwt_login::TokenUse::Access)
            .is_ok()
    );
}

#[test]
fn failure_delay_in_seconds() {
    assert_eq!(
        load(&[("CORE_API_AUTH_LOGIN_FAILURE_DELAY", "0")])
            .unwrap()
            .login_failure_delay,
        Duration::ZERO
    );
    assert_eq!(
        load(&[("CORE_API_AUTH_LOGIN_FAILURE_DELAY", "2")])
            .unwrap()
            .login_failure_delay,
        Duration::from_secs(2)
    );
    assert_eq!(
        load(&[("CORE_API_AUTH_LOGIN_FAILURE_DELAY", "0.25")])
            .unwrap()
            .login_failure_delay,
        Duration::from_millis(250)
    );
    for bad in ["-1", "abc", "", "NaN", "inf", "1e30"] {
        assert!(
            matches!(
                load(&[("CORE_API_AUTH_LOGIN_FAILURE_DELAY", bad)]),
                Err(ConfigError::InvalidSeconds { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn debug_output_redacts_secrets() {
    let c = CoreAuthConfig::default()
        .username("admin")
        .password("datarhei")
        .jwt_secret("secretsecret");
    let text = format!("{c:?}");
    assert!(
        !text.contains("datarhei") && !text.contains("secretsecret"),
        "{text}"
    );
}

#[test]
fn generated_passwords_are_long_and_distinct() {
    let (a, b) = (random_password(), random_password());
    assert_eq!(a.len(), 24);
    assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_ne!(a, b);
}

#[test]
fn zero_failure_window_is_refused_at_start_up() {
    for zero in ["0", "0.0", "0.0000000001"] {
        let err = load(&[("CORE_API_AUTH_LOGIN_FAILURE_WINDOW", zero)])
            .map(|c| c.login_failure_window)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("CORE_API_AUTH_LOGIN_FAILURE_WINDOW") && text.contains("0"),
            "{text}"
        );
    }
}

#[test]
fn unknown_client_ip_header_is_refused_at_start_up() {
    for bad in [
        "X-Forwarded-Host",
        "",
        "X-Real-IP, X-Forwarded-For",
        "x-client-ip",
    ] {
        let err = load(&[("CORE_API_AUTH_CLIENT_IP_HEADER", bad)])
            .map(|c| c.enable)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("CORE_API_AUTH_CLIENT_IP_HEADER") && text.contains("X-Real-IP"),
            "{text}"
        );
    }
}
