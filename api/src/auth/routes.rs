//! The auth endpoints under `/api/v1`:
//!
//! | method and path              | who      | does                                              |
//! |------------------------------|----------|---------------------------------------------------|
//! | `POST /api/v1/session`       | anyone   | `{username, password}` -> 200 `{user, role}` + cookie |
//! | `GET /api/v1/session`        | signed in| who am I: `{user, role, via, can_write, sees_personal_data}` |
//! | `DELETE /api/v1/session`     | anyone   | ends the session -> 204 + an expired cookie       |
//! | `GET /api/v1/users`          | admin    | the users (no hashes)                             |
//! | `POST /api/v1/users`         | admin    | `{username, password, role}` -> 201 `{user, role}` |
//! | `GET /api/v1/tokens`         | admin    | the API tokens (no secrets)                       |
//! | `POST /api/v1/tokens`        | admin    | `{label}` -> 201 `{id, token, label}`, the only time the token is shown |
//! | `DELETE /api/v1/tokens/{id}` | admin    | revokes -> 204                                    |
//!
//! Bodies are JSON objects; a missing or mistyped field is a 400 naming it, an unknown field
//! too, and a rule broken (short password, unknown role) a 422 naming it. A failed sign-in is a
//! 401 that does not say whether the user exists; a locked one a 429 with `Retry-After`.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRef, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::extract::{Caller, ClientAddr, RequireAdmin};
use super::lockout::{client_key, ANY_USER};
use super::session::{expired_session_cookie, session_cookie, session_ids};
use super::{AuthError, AuthState, Role};
use super::{TokenInfo, UserInfo};
use crate::error::{ApiError, ErrorBody};

/// The auth routes, for any app state that provides an [`AuthState`]:
/// `Router::new().merge(auth::router())`.
pub fn router<S>() -> Router<S>
where
    AuthState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            "/api/v1/session",
            post(sign_in).get(who_am_i).delete(sign_out),
        )
        .route("/api/v1/users", post(create_user).get(list_users))
        .route("/api/v1/tokens", post(create_token).get(list_tokens))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
}

/// The body as a JSON object.
fn object(body: Result<Json<Value>, JsonRejection>) -> Result<Map<String, Value>, ApiError> {
    match body? {
        Json(Value::Object(map)) => Ok(map),
        Json(_) => Err(ApiError::BadRequest {
            field: None,
            message: "the body must be a JSON object".into(),
        }),
    }
}

/// Removes and returns the string field `field`: 400 naming it when missing or not a string.
fn take_string(map: &mut Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match map.remove(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::bad(field, format!("`{field}` must be a string"))),
        None => Err(ApiError::bad(field, format!("missing field `{field}`"))),
    }
}

/// 400 naming the first field left over.
fn no_other_fields(map: &Map<String, Value>) -> Result<(), ApiError> {
    match map.keys().next() {
        Some(field) => Err(ApiError::bad(
            field.clone(),
            format!("unknown field `{field}`"),
        )),
        None => Ok(()),
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn with_cookie(mut response: Response, cookie: &str) -> Result<Response, ApiError> {
    let value = HeaderValue::from_str(cookie)
        .map_err(|e| ApiError::Internal(format!("session cookie is not a header value: {e}")))?;
    response.headers_mut().append(header::SET_COOKIE, value);
    Ok(no_store(response))
}

/// Sign in: sets the `lpm_session` cookie (`HttpOnly`, `SameSite=Strict`, `Path=/`, plus
/// `Secure` behind TLS). A wrong pair is a 401 that does not say which part; 5 failures of one
/// user name from one client address lock that pair for 15 minutes (429), and a client address
/// that exceeds its failed sign-in budget gets 429 too.
#[utoipa::path(post, path = "/api/v1/session", tag = "auth", request_body = super::api_doc::SignIn,
    responses(
        (status = 200, description = "Signed in", body = super::api_doc::SignedIn,
            headers(("Set-Cookie" = String, description = "`lpm_session=<id>; HttpOnly; SameSite=Strict; Path=/`"))),
        (status = 400, description = "Not a JSON object, not `application/json`, or a field missing, mistyped or unknown (`field` names it)", body = ErrorBody),
        (status = 401, description = "Wrong user name or password", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins; retry after `Retry-After` seconds", body = ErrorBody)))]
pub(crate) async fn sign_in(
    State(auth): State<AuthState>,
    ClientAddr(ip): ClientAddr,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let mut map = object(body)?;
    let username = take_string(&mut map, "username")?;
    let password = take_string(&mut map, "password")?;
    no_other_fields(&map)?;

    let client = client_key(ip);
    let from_client = match auth.client_lockout.begin(ANY_USER, &client) {
        Ok(attempt) => attempt,
        Err(retry_after) => {
            tracing::info!(%client, "Sign-in refused: too many failures from this address.");
            return Err(AuthError::Locked { retry_after }.into());
        }
    };
    let attempt = match auth.lockout.begin(&username, &client) {
        Ok(attempt) => attempt,
        Err(retry_after) => {
            tracing::info!(user = %username, %client, "Sign-in refused while locked.");
            return Err(AuthError::Locked { retry_after }.into());
        }
    };
    let store = auth.store.clone();
    let name = username.clone();
    let verified = auth
        .hash_blocking(move || store.verify_password(&name, &password))
        .await;
    match verified {
        Ok(principal) => {
            attempt.succeeded();
            // the address's failures stand: one valid account must not unlock guessing others
            drop(from_client);
            let id = auth.sessions.create(principal.clone())?;
            auth.saw_session(&principal);
            tracing::info!(user = %principal.name, role = %principal.role, %client, "Signed in.");
            let body = json!({"user": principal.name, "role": principal.role});
            with_cookie(
                Json(body).into_response(),
                &session_cookie(&id, auth.secure_cookies),
            )
        }
        Err(AuthError::BadCredentials) => match (attempt.failed(), from_client.failed()) {
            (None, Some(_)) => {
                tracing::warn!(%client, "Sign-ins from this address locked after repeated failures.");
                Err(AuthError::BadCredentials.into())
            }
            (Some(retry_after), _) => {
                tracing::warn!(user = %username, %client, "Sign-in locked after repeated failures.");
                Err(AuthError::Locked { retry_after }.into())
            }
            (None, None) => {
                tracing::info!(user = %username, %client, "Sign-in failed.");
                Err(AuthError::BadCredentials.into())
            }
        },
        // Not the client's fault: the attempt is dropped and counts as nothing.
        Err(e) => Err(e.into()),
    }
}

/// Who is calling.
#[utoipa::path(get, path = "/api/v1/session", tag = "auth",
    security(("session" = []), ("token" = [])),
    responses((status = 200, description = "The caller", body = super::api_doc::WhoAmI)))]
pub(crate) async fn who_am_i(Caller(p): Caller) -> Response {
    no_store(
        Json(json!({
            "user": p.name,
            "role": p.role,
            "via": p.via,
            "can_write": p.can_write(),
            "sees_personal_data": p.sees_personal_data(),
        }))
        .into_response(),
    )
}

/// Sign out: ends the session named by the `lpm_session` cookie, if any, and expires the
/// cookie. Needs no credentials: without a session it only expires the cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "auth",
    params(("lpm_session" = Option<String>, Cookie, description = "The session to end")),
    responses((status = 204, description = "Signed out",
        headers(("Set-Cookie" = String, description = "`lpm_session=; ...; Max-Age=0`")))))]
pub(crate) async fn sign_out(
    State(auth): State<AuthState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    for id in session_ids(&headers) {
        if auth.sessions.remove(&id) {
            tracing::info!("Signed out.");
        }
    }
    with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &expired_session_cookie(auth.secure_cookies),
    )
}

/// The users (no password hashes). Admins only.
#[utoipa::path(get, path = "/api/v1/users", tag = "auth",
    security(("session" = []), ("token" = [])),
    responses((status = 200, description = "Every user, in creation order", body = [UserInfo]),
        (status = 403, description = "Not an admin", body = ErrorBody)))]
pub(crate) async fn list_users(
    State(auth): State<AuthState>,
    RequireAdmin(_): RequireAdmin,
) -> Response {
    no_store(Json(auth.store.users()).into_response())
}

/// Create a user. Admins only.
#[utoipa::path(post, path = "/api/v1/users", tag = "auth", request_body = super::api_doc::NewUser,
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "Created", body = super::api_doc::SignedIn),
        (status = 400, description = "Not a JSON object, not `application/json`, or a field missing, mistyped or unknown (`field` names it)", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "A rule broken, or the name is taken; `field` names it", body = ErrorBody)))]
pub(crate) async fn create_user(
    State(auth): State<AuthState>,
    RequireAdmin(admin): RequireAdmin,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let mut map = object(body)?;
    let username = take_string(&mut map, "username")?;
    let password = take_string(&mut map, "password")?;
    let role: Role = take_string(&mut map, "role")?.parse()?;
    no_other_fields(&map)?;
    let store = auth.store.clone();
    let name = username.clone();
    auth.hash_blocking(move || store.add_user(&name, &password, role, &admin.name))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": username, "role": role})),
    )
        .into_response())
}

/// The API tokens (no secrets). Admins only.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "auth",
    security(("session" = []), ("token" = [])),
    responses((status = 200, description = "Every token, revoked ones too", body = [TokenInfo]),
        (status = 403, description = "Not an admin", body = ErrorBody)))]
pub(crate) async fn list_tokens(
    State(auth): State<AuthState>,
    RequireAdmin(_): RequireAdmin,
) -> Response {
    no_store(Json(auth.store.tokens()).into_response())
}

/// Create a read-only API token. Admins only. The answer is the only time the token is shown.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "auth", request_body = super::api_doc::NewTokenIn,
    security(("session" = []), ("token" = [])),
    responses(
        (status = 201, description = "Created", body = super::api_doc::TokenCreated,
            links(("RevokeToken" = (operation_id = "revoke_token", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "Not a JSON object, not `application/json`, or a field missing, mistyped or unknown (`field` names it)", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "A bad label", body = ErrorBody)))]
pub(crate) async fn create_token(
    State(auth): State<AuthState>,
    RequireAdmin(admin): RequireAdmin,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let mut map = object(body)?;
    let label = take_string(&mut map, "label")?;
    no_other_fields(&map)?;
    let store = auth.store.clone();
    let for_store = label.clone();
    let token = auth
        .hash_blocking(move || store.create_token(&for_store, &admin.name))
        .await?;
    Ok(no_store(
        (
            StatusCode::CREATED,
            Json(json!({"id": token.id, "token": token.token, "label": label})),
        )
            .into_response(),
    ))
}

/// Revoke a token; it stops working at once. Revoking a revoked token is not an error.
/// Admins only.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "auth",
    params(("id" = String, Path, description = "The token id (the `<id>` in `lpm_<id>_<secret>`)")),
    security(("session" = []), ("token" = [])),
    responses((status = 204, description = "Revoked"),
        (status = 400, description = "The id is not valid UTF-8", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody)))]
pub(crate) async fn revoke_token(
    State(auth): State<AuthState>,
    RequireAdmin(admin): RequireAdmin,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let store = auth.store.clone();
    auth.hash_blocking(move || store.revoke_token(&id, &admin.name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{Method, Request};
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::auth::{
        AuthStore, ManualClock, MaybeCaller, PasswordCost, RequireWriter, SESSION_COOKIE,
    };

    const ADMIN_PW: &str = "admin-password";
    const RESP_PW: &str = "responder-password";

    struct Fixture {
        _dir: tempfile::TempDir,
        auth: AuthState,
        clock: Arc<ManualClock>,
        reader_token: String,
    }

    fn fixture(secure: bool) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AuthStore::open_with_cost(dir.path(), PasswordCost::Fast).expect("open");
        store
            .add_user("admin", ADMIN_PW, Role::Admin, "test")
            .expect("admin");
        store
            .add_user("resp", RESP_PW, Role::Responder, "test")
            .expect("responder");
        let reader_token = store.create_token("grafana", "test").expect("token").token;
        let clock = Arc::new(ManualClock::new());
        let auth = AuthState::with_clock(Arc::new(store), secure, clock.clone());
        Fixture {
            _dir: dir,
            auth,
            clock,
            reader_token,
        }
    }

    /// The auth router plus dummy routes guarded by each extractor, as the app mounts them.
    fn app(auth: &AuthState) -> Router {
        Router::new()
            .merge(router())
            .route(
                "/read",
                get(|Caller(p): Caller| async move { p.name }),
            )
            .route(
                "/write",
                post(|RequireWriter(p): RequireWriter| async move { format!("written by {}", p.name) }),
            )
            .route(
                "/public",
                get(|MaybeCaller(p): MaybeCaller| async move {
                    p.map_or("anonymous".to_string(), |p| p.name)
                }),
            )
            .with_state(auth.clone())
    }

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: Value,
    }

    async fn send(app: &Router, req: Request<Body>) -> Reply {
        let response = app.clone().oneshot(req).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            body,
        }
    }

    fn json_request(method: Method, uri: &str, body: &str) -> Request<Body> {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .expect("request")
    }

    fn sign_in_request(user: &str, password: &str, ip: [u8; 4]) -> Request<Body> {
        let mut req = json_request(
            Method::POST,
            "/api/v1/session",
            &json!({"username": user, "password": password}).to_string(),
        );
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40000))));
        req
    }

    fn with_bearer(mut req: Request<Body>, token: &str) -> Request<Body> {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
        req.headers_mut().insert(header::AUTHORIZATION, value);
        req
    }

    fn with_cookie_header(mut req: Request<Body>, cookie: &str) -> Request<Body> {
        let value = HeaderValue::from_str(cookie).expect("header");
        req.headers_mut().insert(header::COOKIE, value);
        req
    }

    fn get_req(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).expect("request")
    }

    fn post_req(uri: &str) -> Request<Body> {
        Request::post(uri).body(Body::empty()).expect("request")
    }

    /// Signs in and returns the `Cookie` header value to send back.
    async fn session_for(app: &Router, user: &str, password: &str) -> String {
        let reply = send(app, sign_in_request(user, password, [10, 0, 0, 1])).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let set = reply
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("set-cookie");
        set.split(';').next().expect("pair").to_string()
    }

    #[tokio::test]
    async fn sign_in_sets_a_strict_http_only_cookie() {
        let f = fixture(false);
        let app = app(&f.auth);
        let reply = send(&app, sign_in_request("resp", RESP_PW, [10, 0, 0, 1])).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, json!({"user": "resp", "role": "responder"}));
        let cookie = reply
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("set-cookie");
        assert!(
            cookie.starts_with(&format!("{SESSION_COOKIE}=")),
            "{cookie}"
        );
        assert!(cookie.contains("; HttpOnly"), "{cookie}");
        assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
        assert!(cookie.contains("; Path=/"), "{cookie}");
        assert!(!cookie.contains("Secure"), "{cookie}");
        assert_eq!(
            reply.headers.get(header::CACHE_CONTROL),
            Some(&HeaderValue::from_static("no-store"))
        );

        let secure = fixture(true);
        let reply = send(
            &super::tests::app(&secure.auth),
            sign_in_request("resp", RESP_PW, [10, 0, 0, 1]),
        )
        .await;
        let cookie = reply
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("set-cookie");
        assert!(cookie.contains("; Secure"), "{cookie}");
    }

    #[tokio::test]
    async fn session_who_am_i_and_sign_out() {
        let f = fixture(false);
        let app = app(&f.auth);
        let cookie = session_for(&app, "admin", ADMIN_PW).await;
        let me = send(
            &app,
            with_cookie_header(get_req("/api/v1/session"), &cookie),
        )
        .await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(
            me.body,
            json!({"user": "admin", "role": "admin", "via": "session",
                   "can_write": true, "sees_personal_data": true})
        );

        let out = send(
            &app,
            with_cookie_header(
                Request::delete("/api/v1/session")
                    .body(Body::empty())
                    .expect("request"),
                &cookie,
            ),
        )
        .await;
        assert_eq!(out.status, StatusCode::NO_CONTENT);
        let expired = out
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("set-cookie");
        assert!(expired.contains("Max-Age=0"), "{expired}");

        let me = send(
            &app,
            with_cookie_header(get_req("/api/v1/session"), &cookie),
        )
        .await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED);
        assert_eq!(me.body["field"], Value::Null);
        assert!(me.body["error"].is_string());
        assert_eq!(
            me.headers.get(header::WWW_AUTHENTICATE),
            Some(&HeaderValue::from_static("Bearer"))
        );
        // A stale cookie on a public route is just anonymous.
        let public = send(&app, with_cookie_header(get_req("/public"), &cookie)).await;
        assert_eq!(public.body, json!("anonymous"));
    }

    #[tokio::test]
    async fn sessions_expire_after_twelve_idle_hours() {
        let f = fixture(false);
        let app = app(&f.auth);
        let cookie = session_for(&app, "resp", RESP_PW).await;
        f.clock.advance(Duration::from_secs(11 * 3600));
        let r = send(&app, with_cookie_header(get_req("/read"), &cookie)).await;
        assert_eq!(r.status, StatusCode::OK);
        f.clock.advance(Duration::from_secs(12 * 3600));
        let r = send(&app, with_cookie_header(get_req("/read"), &cookie)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn wrong_password_and_unknown_user_look_the_same() {
        let f = fixture(false);
        let app = app(&f.auth);
        let wrong = send(
            &app,
            sign_in_request("resp", "not-the-password", [10, 0, 0, 1]),
        )
        .await;
        let unknown = send(&app, sign_in_request("nobody", RESP_PW, [10, 0, 0, 1])).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.body, unknown.body);
        assert!(wrong.headers.get(header::SET_COOKIE).is_none());
    }

    #[tokio::test]
    async fn lockout_after_five_failures_per_client_then_unlock() {
        let f = fixture(false);
        let app = app(&f.auth);
        let attacker = [192, 0, 2, 66];
        for _ in 0..4 {
            let r = send(&app, sign_in_request("resp", "guess-guess", attacker)).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
        let r = send(&app, sign_in_request("resp", "guess-guess", attacker)).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            r.headers.get(header::RETRY_AFTER),
            Some(&HeaderValue::from(900u64))
        );
        // Locked: even the right password is refused, with the time left.
        f.clock.advance(Duration::from_secs(60));
        let r = send(&app, sign_in_request("resp", RESP_PW, attacker)).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            r.headers.get(header::RETRY_AFTER),
            Some(&HeaderValue::from(840u64))
        );
        assert!(r.headers.get(header::SET_COOKIE).is_none());
        // The responder's own machine still signs in.
        let r = send(&app, sign_in_request("resp", RESP_PW, [10, 0, 0, 9])).await;
        assert_eq!(r.status, StatusCode::OK);
        // 15 minutes after the lock, the attacker's address may try again.
        f.clock.advance(Duration::from_secs(14 * 60));
        let r = send(&app, sign_in_request("resp", RESP_PW, attacker)).await;
        assert_eq!(r.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn without_connect_info_clients_share_the_unknown_key() {
        let f = fixture(false);
        let app = app(&f.auth);
        let body = json!({"username": "resp", "password": "guess-guess"}).to_string();
        for _ in 0..5 {
            send(&app, json_request(Method::POST, "/api/v1/session", &body)).await;
        }
        assert!(f.auth.lockout.locked_for("resp", "unknown").is_some());
    }

    #[tokio::test]
    async fn malformed_sign_in_is_a_400_naming_the_field() {
        let f = fixture(false);
        let app = app(&f.auth);
        let cases = [
            (r#"{"password":"x"}"#, json!("username")),
            (r#"{"username":"resp"}"#, json!("password")),
            (r#"{"username":7,"password":"x"}"#, json!("username")),
            (r#"{"username":"resp","password":null}"#, json!("password")),
            (
                r#"{"username":"resp","password":"x","remember":true}"#,
                json!("remember"),
            ),
            (r#"["resp","x"]"#, Value::Null),
            (r#"{"username":"#, Value::Null),
        ];
        for (body, field) in cases {
            let r = send(&app, json_request(Method::POST, "/api/v1/session", body)).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
            assert_eq!(r.body["field"], field, "{body}: {}", r.body);
        }
        let r = send(&app, post_req("/api/v1/session")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "no content type");
        // None of these counted as a failed sign-in.
        assert_eq!(f.auth.lockout.tracked(), 0);
    }

    #[tokio::test]
    async fn access_matrix_for_protected_routes() {
        let f = fixture(false);
        let app = app(&f.auth);
        let admin = session_for(&app, "admin", ADMIN_PW).await;
        let resp = session_for(&app, "resp", RESP_PW).await;

        // (request builder, expected /read, expected /write)
        type Auth = Box<dyn Fn(Request<Body>) -> Request<Body>>;
        let token = f.reader_token.clone();
        let (a, r) = (admin.clone(), resp.clone());
        let callers: Vec<(&str, Auth, StatusCode, StatusCode)> = vec![
            (
                "nobody",
                Box::new(|req| req),
                StatusCode::UNAUTHORIZED,
                StatusCode::UNAUTHORIZED,
            ),
            (
                "reader token",
                Box::new(move |req| with_bearer(req, &token)),
                StatusCode::OK,
                StatusCode::FORBIDDEN,
            ),
            (
                "bad token",
                Box::new(|req| {
                    with_bearer(
                        req,
                        "lpm_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                    )
                }),
                StatusCode::UNAUTHORIZED,
                StatusCode::UNAUTHORIZED,
            ),
            (
                "session id as bearer",
                Box::new({
                    let r = r.clone();
                    move |req| with_bearer(req, r.split_once('=').map_or("", |(_, v)| v))
                }),
                StatusCode::UNAUTHORIZED,
                StatusCode::UNAUTHORIZED,
            ),
            (
                "basic auth",
                Box::new(|mut req: Request<Body>| {
                    req.headers_mut().insert(
                        header::AUTHORIZATION,
                        HeaderValue::from_static("Basic YWRtaW46eA=="),
                    );
                    req
                }),
                StatusCode::UNAUTHORIZED,
                StatusCode::UNAUTHORIZED,
            ),
            (
                "forged cookie",
                Box::new(|req| with_cookie_header(req, "lpm_session=forged")),
                StatusCode::UNAUTHORIZED,
                StatusCode::UNAUTHORIZED,
            ),
            (
                "responder",
                Box::new(move |req| with_cookie_header(req, &r)),
                StatusCode::OK,
                StatusCode::OK,
            ),
            (
                "admin",
                Box::new(move |req| with_cookie_header(req, &a)),
                StatusCode::OK,
                StatusCode::OK,
            ),
        ];
        for (who, auth, read, write) in &callers {
            let r = send(&app, auth(get_req("/read"))).await;
            assert_eq!(r.status, *read, "{who} GET /read: {}", r.body);
            let w = send(&app, auth(post_req("/write"))).await;
            assert_eq!(w.status, *write, "{who} POST /write: {}", w.body);
            if w.status.is_client_error() {
                assert_eq!(w.body["field"], Value::Null, "{who}");
                assert!(w.body["error"].is_string(), "{who}");
            }
            if w.status == StatusCode::UNAUTHORIZED {
                assert!(w.headers.contains_key(header::WWW_AUTHENTICATE), "{who}");
            }
        }
        let w = send(&app, with_cookie_header(post_req("/write"), &resp)).await;
        assert_eq!(w.body, json!("written by resp"));

        // A reader token on a public route is a reader; a bad one is still refused.
        let p = send(&app, with_bearer(get_req("/public"), &f.reader_token)).await;
        assert!(p.body.as_str().is_some_and(|s| s.starts_with("token:")));
        let p = send(&app, with_bearer(get_req("/public"), "lpm_nope")).await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);

        // Admin-only routes.
        for (who, cookie, status) in [
            ("responder", Some(&resp), StatusCode::FORBIDDEN),
            ("admin", Some(&admin), StatusCode::OK),
            ("nobody", None, StatusCode::UNAUTHORIZED),
        ] {
            for uri in ["/api/v1/users", "/api/v1/tokens"] {
                let req = match cookie {
                    Some(c) => with_cookie_header(get_req(uri), c),
                    None => get_req(uri),
                };
                let r = send(&app, req).await;
                assert_eq!(r.status, status, "{who} GET {uri}");
            }
        }
        let r = send(&app, with_bearer(get_req("/api/v1/users"), &f.reader_token)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn admins_manage_users_and_tokens() {
        let f = fixture(false);
        let app = app(&f.auth);
        let admin = session_for(&app, "admin", ADMIN_PW).await;
        let as_admin = |req| with_cookie_header(req, &admin);

        let r = send(
            &app,
            as_admin(json_request(
                Method::POST,
                "/api/v1/users",
                r#"{"username":"eva","password":"eva-password","role":"responder"}"#,
            )),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body, json!({"user": "eva", "role": "responder"}));
        let users = send(&app, as_admin(get_req("/api/v1/users"))).await;
        let eva = users
            .body
            .as_array()
            .and_then(|u| u.iter().find(|u| u["name"] == "eva").cloned());
        let eva = eva.expect("eva listed");
        assert_eq!(eva["created_by"], "admin");
        assert!(eva.get("password_hash").is_none());
        let r = send(&app, sign_in_request("eva", "eva-password", [10, 0, 0, 2])).await;
        assert_eq!(r.status, StatusCode::OK, "the new user signs in");

        for (body, status, field) in [
            (
                r#"{"username":"x1","password":"long-enough","role":"root"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "role",
            ),
            (
                r#"{"username":"x1","password":"long-enough","role":"reader"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "role",
            ),
            (
                r#"{"username":"x1","password":"short","role":"admin"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "password",
            ),
            (
                r#"{"username":"X 1","password":"long-enough","role":"admin"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "username",
            ),
            (
                r#"{"username":"eva","password":"long-enough","role":"admin"}"#,
                StatusCode::UNPROCESSABLE_ENTITY,
                "username",
            ),
            (
                r#"{"username":"x1","password":"long-enough"}"#,
                StatusCode::BAD_REQUEST,
                "role",
            ),
            (
                r#"{"username":"x1","password":"long-enough","role":1}"#,
                StatusCode::BAD_REQUEST,
                "role",
            ),
        ] {
            let r = send(
                &app,
                as_admin(json_request(Method::POST, "/api/v1/users", body)),
            )
            .await;
            assert_eq!(r.status, status, "{body}: {}", r.body);
            assert_eq!(r.body["field"], field, "{body}: {}", r.body);
        }

        let r = send(
            &app,
            as_admin(json_request(
                Method::POST,
                "/api/v1/tokens",
                r#"{"label":"analyst"}"#,
            )),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.body["id"].as_str().expect("id").to_string();
        let token = r.body["token"].as_str().expect("token").to_string();
        let me = send(&app, with_bearer(get_req("/api/v1/session"), &token)).await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.body["role"], "reader");
        assert_eq!(me.body["via"], "token");
        assert_eq!(me.body["sees_personal_data"], false);
        assert_eq!(me.body["can_write"], false);

        let listed = send(&app, as_admin(get_req("/api/v1/tokens"))).await;
        assert!(!listed.body.to_string().contains(&token));

        let r = send(
            &app,
            as_admin(json_request(Method::POST, "/api/v1/tokens", "{}")),
        )
        .await;
        assert_eq!(
            (r.status, r.body["field"].clone()),
            (StatusCode::BAD_REQUEST, json!("label"))
        );

        let revoke = |id: &str| {
            as_admin(
                Request::delete(format!("/api/v1/tokens/{id}"))
                    .body(Body::empty())
                    .expect("request"),
            )
        };
        let r = send(&app, revoke(&id)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let me = send(&app, with_bearer(get_req("/api/v1/session"), &token)).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED);
        let r = send(&app, revoke("nope")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = send(
            &app,
            with_bearer(
                Request::delete(format!("/api/v1/tokens/{id}"))
                    .body(Body::empty())
                    .expect("request"),
                &f.reader_token,
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
}
