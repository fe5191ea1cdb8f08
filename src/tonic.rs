//! tonic integration (feature `tonic`): reading the verified claims in a gRPC handler.
//!
//! [`JwtAuthLayer`](crate::auth::JwtAuthLayer) guards a tonic server as it is — put it on the
//! server builder (`Server::builder().layer(JwtAuthLayer::new(jwt))`). A gRPC request without a
//! valid access token never reaches the service: the layer answers the gRPC way (HTTP 200,
//! `grpc-status: 16`, see [`grpc_unauthenticated_response`](crate::auth::grpc_unauthenticated_response)),
//! which the client sees as `Status` code `Unauthenticated`. A request that passes carries the
//! [`Claims`] in its extensions, which tonic hands to the service in
//! [`tonic::Request::extensions`]; [`ClaimsExt`] reads them.
//!
//! Clients send the access token as metadata: `authorization: Bearer <access token>`.
//!
//! ```
//! use tonic::{Request, Status};
//! use tower_jwt_login::tonic::ClaimsExt;
//! use tower_jwt_login::{JwtConfig, JwtKey, TokenUse};
//!
//! /// What a handler body looks like.
//! fn whoami(request: &Request<()>) -> Result<String, Status> {
//!     let claims = request.require_claims()?;
//!     Ok(claims.subject().to_owned())
//! }
//!
//! let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
//! let token = jwt.issue_pair("alice").access_token;
//! let claims = jwt.verify(&token, TokenUse::Access).unwrap();
//!
//! let mut request = Request::new(());
//! assert_eq!(whoami(&request).unwrap_err().code(), tonic::Code::Unauthenticated);
//! request.extensions_mut().insert(claims); // what the layer does
//! assert_eq!(whoami(&request).unwrap(), "alice");
//! ```

use tonic::{Request, Status};

use crate::Claims;
use crate::auth::Requirement;
use crate::error::{FORBIDDEN_DETAIL, INVALID_TOKEN_DETAIL};

/// The verified claims of a [`tonic::Request`].
pub trait ClaimsExt {
    /// The claims the layer attached, if any.
    fn claims(&self) -> Option<&Claims>;

    /// The claims the layer attached, or `Status` `Unauthenticated` with the message
    /// `Missing or invalid JWT token` (only reachable when the method's path is public or
    /// optional in the layer's policy, or when the layer is missing).
    fn require_claims(&self) -> Result<&Claims, Status> {
        self.claims()
            .ok_or_else(|| Status::unauthenticated(INVALID_TOKEN_DETAIL))
    }

    /// The claims, when their extra claim `roles` contains `role`; otherwise `Status`
    /// `PermissionDenied` with the message `Insufficient permissions` (no claims at all:
    /// `Unauthenticated`, as [`require_claims`](Self::require_claims)).
    ///
    /// ```
    /// use tonic::{Code, Request};
    /// use tower_jwt_login::tonic::ClaimsExt;
    /// use tower_jwt_login::{JwtConfig, JwtKey, Principal, TokenUse};
    ///
    /// let jwt = JwtConfig::new(JwtKey::random()).build().unwrap();
    /// let root = Principal::builder("root").claim("roles", ["admin"]).build().unwrap();
    /// let mut request = Request::new(());
    /// let bob = jwt.verify(&jwt.issue_pair("bob").access_token, TokenUse::Access).unwrap();
    /// request.extensions_mut().insert(bob);
    /// assert_eq!(request.require_role("admin").unwrap_err().code(), Code::PermissionDenied);
    /// let root = jwt.verify(&jwt.issue_pair_for(&root).access_token, TokenUse::Access).unwrap();
    /// request.extensions_mut().insert(root);
    /// assert_eq!(request.require_role("admin").unwrap().subject(), "root");
    /// ```
    fn require_role(&self, role: &str) -> Result<&Claims, Status> {
        let claims = self.require_claims()?;
        if claims.has_role(role) {
            Ok(claims)
        } else {
            Err(Status::permission_denied(FORBIDDEN_DETAIL))
        }
    }

    /// The claims, when they meet `requirement`; otherwise `Status` `PermissionDenied`
    /// (`Unauthenticated` without claims).
    fn require(&self, requirement: &Requirement) -> Result<&Claims, Status> {
        let claims = self.require_claims()?;
        if requirement.is_met(claims) {
            Ok(claims)
        } else {
            Err(Status::permission_denied(FORBIDDEN_DETAIL))
        }
    }
}

impl<T> ClaimsExt for Request<T> {
    fn claims(&self) -> Option<&Claims> {
        self.extensions().get::<Claims>()
    }
}
