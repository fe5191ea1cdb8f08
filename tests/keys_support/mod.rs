//! Real key files for the key-ring tests, made with the `openssl` CLI in a fresh directory.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use tower_jwt_login::Algorithm;

/// A fresh, empty directory under the system's temp dir.
pub fn key_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tjl-keys-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl CLI");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl genpkey` arguments for an algorithm's key.
pub fn genpkey_args(alg: Algorithm) -> Vec<&'static str> {
    match alg {
        Algorithm::EdDSA => vec!["-algorithm", "ed25519"],
        Algorithm::ES256 => vec!["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        Algorithm::RS256 => vec!["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        other => panic!("no key file for {other:?}"),
    }
}

/// A PKCS#8 private key file and its SPKI public key file: (private, public).
pub fn key_pair(dir: &Path, name: &str, alg: Algorithm) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let mut args = vec!["genpkey"];
    args.extend(genpkey_args(alg));
    args.extend(["-out", private.to_str().unwrap()]);
    openssl(&args);
    openssl(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (private, public)
}

pub const ASYMMETRIC: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];
