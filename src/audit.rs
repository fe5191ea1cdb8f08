//! The audit events' shared vocabulary: their `tracing` target and field formats, used by every
//! service that audits an outcome (login, refresh, API keys, the second factor). The events
//! themselves are described in the [`login`](crate::login) module docs.

use std::net::IpAddr;

/// The target of the audit events.
pub(crate) const AUDIT: &str = "tower_jwt_login::audit";

/// The `client` field of an audit event: the address, or `unknown`.
pub(crate) struct AuditClient(pub(crate) Option<IpAddr>);

impl std::fmt::Display for AuditClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}
