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
use crate::error::INVALID_TOKEN_DETAIL;

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
}

impl<T> ClaimsExt for Request<T> {
    fn claims(&self) -> Option<&Claims> {
        self.extensions().get::<Claims>()
    }
}
