//! Extractors: who is calling ([`Caller`], [`MaybeCaller`]), whether they may write
//! ([`RequireWriter`]) or administer ([`RequireAdmin`]), and from where ([`ClientAddr`]).
//!
//! Credentials are read in this order: `Authorization: Bearer <token>` (API tokens only),
//! then the `lpm_session` cookie. A request that sends an `Authorization` header is judged by
//! it alone, so a bad token is reported as such instead of silently falling back to a cookie.
//! The result is cached in the request's extensions, so several extractors on one handler
//! check the credentials once.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::session::session_ids;
use super::{AuthError, AuthState, Principal};

/// The authenticated caller; rejects with 401 (`WWW-Authenticate: Bearer`) when there are no
/// valid credentials.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// The caller if there is one, for public routes. A missing or expired session cookie gives
/// `None`; a Bearer header with an invalid token is still a 401, so a misconfigured client
/// finds out instead of quietly getting anonymous answers.
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Principal>);

/// A caller who may write (responder or admin): 401 without credentials, 403 for a read-only
/// token. Record `.0.name` with the write.
#[derive(Debug, Clone)]
pub struct RequireWriter(pub Principal);

/// An admin: 401 without credentials, 403 otherwise.
#[derive(Debug, Clone)]
pub struct RequireAdmin(pub Principal);

/// The client's IP address (the TCP peer from `ConnectInfo<SocketAddr>`), `None` when the
/// server was not started with `into_make_service_with_connect_info`. `X-Forwarded-For` is
/// deliberately ignored: any client can set it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

/// What the request proved, cached in its extensions.
#[derive(Debug, Clone)]
struct Authenticated(Option<Principal>);

/// The credentials in `headers`: `Ok(None)` when there are none (or only stale session
/// cookies), an error when a Bearer header is malformed or its token invalid.
fn authenticate(auth: &AuthState, headers: &HeaderMap) -> Result<Option<Principal>, AuthError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| AuthError::InvalidToken)?;
        let (scheme, token) = value
            .trim()
            .split_once(' ')
            .ok_or(AuthError::InvalidToken)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Unauthenticated);
        }
        return auth
            .store
            .verify_token(token.trim())
            .map(Some)
            .ok_or(AuthError::InvalidToken);
    }
    let principal = session_ids(headers)
        .into_iter()
        .find_map(|id| auth.sessions.get(&id));
    if let Some(p) = &principal {
        auth.saw_session(p);
    }
    Ok(principal)
}

/// Authenticates once per request: `Ok(None)` for no credentials, `Err` for bad ones.
/// Bad session cookies count as no credentials (`SessionExpired` is reported by [`Caller`]).
fn principal_of<S>(parts: &mut Parts, state: &S) -> Result<Option<Principal>, AuthError>
where
    AuthState: FromRef<S>,
{
    if let Some(Authenticated(p)) = parts.extensions.get::<Authenticated>() {
        return Ok(p.clone());
    }
    let auth = AuthState::from_ref(state);
    let principal = authenticate(&auth, &parts.headers)?;
    parts.extensions.insert(Authenticated(principal.clone()));
    Ok(principal)
}

impl<S> FromRequestParts<S> for Caller
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, AuthError> {
        match principal_of(parts, state)? {
            Some(p) => Ok(Caller(p)),
            None if !session_ids(&parts.headers).is_empty() => Err(AuthError::SessionExpired),
            None => Err(AuthError::Unauthenticated),
        }
    }
}

impl<S> FromRequestParts<S> for MaybeCaller
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<MaybeCaller, AuthError> {
        principal_of(parts, state).map(MaybeCaller)
    }
}

impl<S> FromRequestParts<S> for RequireWriter
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<RequireWriter, AuthError> {
        let Caller(p) = Caller::from_request_parts(parts, state).await?;
        if p.can_write() {
            Ok(RequireWriter(p))
        } else {
            Err(AuthError::Forbidden {
                needs: "responder or admin",
            })
        }
    }
}

impl<S> FromRequestParts<S> for RequireAdmin
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<RequireAdmin, AuthError> {
        let Caller(p) = Caller::from_request_parts(parts, state).await?;
        if p.is_admin() {
            Ok(RequireAdmin(p))
        } else {
            Err(AuthError::Forbidden { needs: "admin" })
        }
    }
}

impl<S> FromRequestParts<S> for ClientAddr
where
    S: Send + Sync,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<ClientAddr, Infallible> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}
