//! The server API: a second listener (`api_listen`) for backends and operators, on only when
//! `api_keys` is set. JSON in and out; every `/api/…` route needs `Authorization: Bearer <key>`;
//! `GET /metrics` (Prometheus) needs none, the listener being internal.
//!
//! [`Route`] is the one list of what is served: requests are matched against it here (so the
//! route label of the request counter and the OpenAPI document's test read the same list), each
//! route's handler lives in a file named for it, and [`errors`] turns every failure into a status
//! and a JSON body.

pub mod disconnect;
pub mod errors;
pub mod history;
pub mod hubs;
pub mod idempotency;
pub mod publish;
pub mod publish_batch;
pub mod request;
pub mod rooms;

use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Serialize;
use tokio::task::JoinHandle;
use warp::Filter;
use warp::reply::{Reply, Response};

pub use errors::ApiError;

use crate::auth::ApiKeys;
use crate::start_error::StartError;
use crate::state::AppState;
use idempotency::Idempotency;

/// Every route of the API listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Publish,
    PublishBatch,
    Broadcast,
    Rooms,
    RoomPresence,
    RoomHistory,
    Disconnect,
    Hubs,
    Metrics,
}

impl Route {
    pub const ALL: &'static [Route] = &[
        Route::Publish,
        Route::PublishBatch,
        Route::Broadcast,
        Route::Rooms,
        Route::RoomPresence,
        Route::RoomHistory,
        Route::Disconnect,
        Route::Hubs,
        Route::Metrics,
    ];

    pub fn method(self) -> Method {
        match self.method_name() {
            "GET" => Method::GET,
            _ => Method::POST,
        }
    }

    fn method_name(self) -> &'static str {
        match self {
            Route::Publish | Route::PublishBatch | Route::Broadcast | Route::Disconnect => "POST",
            Route::Rooms
            | Route::RoomPresence
            | Route::RoomHistory
            | Route::Hubs
            | Route::Metrics => "GET",
        }
    }

    /// The path, with `{room}` standing for one path segment (as in the OpenAPI document).
    pub fn pattern(self) -> &'static str {
        match self {
            Route::Publish => "/api/publish",
            Route::PublishBatch => "/api/publish/batch",
            Route::Broadcast => "/api/broadcast",
            Route::Rooms => "/api/rooms",
            Route::RoomPresence => "/api/rooms/{room}/presence",
            Route::RoomHistory => "/api/rooms/{room}/history",
            Route::Disconnect => "/api/disconnect",
            Route::Hubs => "/api/hubs",
            Route::Metrics => "/metrics",
        }
    }

    fn needs_key(self) -> bool {
        self != Route::Metrics
    }

    /// `path`'s segments against this route's; the `{room}` segment if it has one.
    fn matches(self, path: &str) -> Option<Option<&str>> {
        let mut room = None;
        let mut want = self.pattern().split('/');
        let mut got = path.split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return Some(room),
                (Some("{room}"), Some(segment)) if !segment.is_empty() => room = Some(segment),
                (Some(w), Some(g)) if w == g => {}
                _ => return None,
            }
        }
    }
}

/// Which route serves `method` `path`, and its `{room}`; 404 or 405 when none.
pub fn resolve<'p>(method: &Method, path: &'p str) -> Result<(Route, Option<&'p str>), ApiError> {
    let mut path_known = None;
    for &route in Route::ALL {
        if let Some(room) = route.matches(path) {
            if route.method() == method {
                return Ok((route, room));
            }
            path_known = Some(route);
        }
    }
    match path_known {
        Some(route) => Err(ApiError::MethodNotAllowed {
            allowed: route.method_name(),
        }),
        None => Err(ApiError::NotFound),
    }
}

#[derive(Debug)]
struct Inner {
    state: AppState,
    keys: ApiKeys,
    idempotency: Idempotency,
    /// Largest request body: room for a `max_message_bytes` content and the other fields.
    body_limit: usize,
    /// Largest batch body: as many such messages as a batch may hold.
    batch_body_limit: usize,
    /// Longest a request body may take to arrive (`handshake_timeout`, as for the header).
    body_timeout: Duration,
}

/// The API's handle: cloned into the accept loop's filter.
#[derive(Debug, Clone)]
pub struct Api(Arc<Inner>);

/// Binds `api_listen` and serves the API until the hub shuts down; `None` (nothing bound) when
/// `api_keys` is unset.
pub fn start(state: &AppState) -> Result<Option<JoinHandle<()>>, StartError> {
    let settings = &state.settings;
    let Some(keys) = &settings.api_keys else {
        return Ok(None);
    };
    let keys = ApiKeys::parse(keys)?;
    let listener =
        crate::listen::listen(settings.api_listen).map_err(|source| StartError::ApiListen {
            addr: settings.api_listen,
            source,
        })?;
    let api = Api(Arc::new(Inner {
        state: state.clone(),
        keys,
        idempotency: Idempotency::new(
            state.redis.as_ref(),
            &settings.redis_prefix,
            settings.redis_timeout,
        ),
        body_limit: settings.max_message_bytes + 4096,
        batch_body_limit: (settings.max_message_bytes + 4096) * publish_batch::MAX_MESSAGES,
        body_timeout: settings.handshake_timeout,
    }));
    tracing::info!(
        addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        "server API listening"
    );
    let shutdown = state.shutdown.clone();
    Ok(Some(tokio::spawn(http_accept::serve(
        listener,
        api.routes().with(warp::log("hub_server::api")),
        settings.request_limits(),
        Arc::new(http_accept::Everyone),
        async move { shutdown.wait().await },
    ))))
}

fn json(value: &impl Serialize) -> Response {
    warp::reply::json(value).into_response()
}

impl Api {
    /// One filter for every request: matching is [`resolve`]'s, so nothing is rejected by warp
    /// and every answer, errors included, is the API's JSON.
    fn routes(
        self,
    ) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
        let query = warp::query::raw().or(warp::any().map(String::new)).unify();
        warp::method()
            .and(warp::path::full())
            .and(query)
            .and(warp::header::headers_cloned())
            .and(warp::body::stream())
            .then(
                move |method, path: warp::path::FullPath, query, headers, body| {
                    let api = self.clone();
                    async move {
                        api.handle(method, path.as_str(), query, headers, body)
                            .await
                    }
                },
            )
            .recover(|_| async {
                Ok::<_, std::convert::Infallible>(ApiError::NotFound.into_response())
            })
            .unify()
    }

    async fn handle<S, B>(
        &self,
        method: Method,
        path: &str,
        query: String,
        headers: HeaderMap,
        body: S,
    ) -> Response
    where
        S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
        B: bytes::Buf + Send + 'static,
    {
        let (label, result) = match resolve(&method, path) {
            Err(err) => ("unmatched", Err(err)),
            Ok((route, _)) if route.needs_key() && !self.0.keys.allows(&headers) => {
                (route.pattern(), Err(ApiError::Unauthorized))
            }
            Ok((route, room)) => {
                let room = room.map(str::to_owned);
                let answer = self.dispatch(route, room, &query, &headers, body).await;
                (route.pattern(), answer)
            }
        };
        let response = result.unwrap_or_else(ApiError::into_response);
        self.0
            .state
            .metrics
            .api_request(label, response.status().as_u16());
        response
    }

    async fn dispatch<S, B>(
        &self,
        route: Route,
        room: Option<String>,
        query: &str,
        headers: &HeaderMap,
        body: S,
    ) -> Result<Response, ApiError>
    where
        S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
        B: bytes::Buf + Send + 'static,
    {
        let state = &self.0.state;
        let limit = match route {
            Route::PublishBatch => self.0.batch_body_limit,
            _ => self.0.body_limit,
        };
        let body = || request::body(headers, body, limit, self.0.body_timeout);
        match route {
            Route::Publish => {
                let (request, api) = (request::json(&body().await?)?, self.clone());
                let answer = to_the_end(async move {
                    publish::publish(&api.0.state, &api.0.idempotency, request).await
                })
                .await?;
                Ok(json(&answer))
            }
            Route::PublishBatch => {
                let (request, api) = (request::json(&body().await?)?, self.clone());
                let answer = to_the_end(async move {
                    publish_batch::publish(&api.0.state, &api.0.idempotency, request).await
                })
                .await?;
                Ok(json(&answer))
            }
            Route::Broadcast => {
                let request = request::json(&body().await?)?;
                Ok(json(&publish::broadcast(state, request).await?))
            }
            Route::Rooms => Ok(json(&rooms::list(state).await?)),
            Route::RoomPresence => {
                let room = room.unwrap_or_default();
                Ok(json(&rooms::presence(state, &room).await?))
            }
            Route::RoomHistory => {
                let room = room.unwrap_or_default();
                Ok(json(&history::read(state, &room, query).await?))
            }
            Route::Disconnect => {
                let request = request::json(&body().await?)?;
                Ok(json(&disconnect::disconnect(state, request).await?))
            }
            Route::Hubs => Ok(json(&hubs::list(state).await?)),
            Route::Metrics => Ok(metrics(state)),
        }
    }
}

/// Runs a publish in a task of its own: a client that hangs up mid-request does not cut a
/// publish (or its idempotency record) in half.
async fn to_the_end<T: Send + 'static>(
    publish: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::spawn(publish)
        .await
        .map_err(|_| ApiError::Unavailable("the publish did not complete"))?
}

/// A presence question, bounded: Redis not answering within two `redis_timeout`s is a 503.
async fn presence_bounded<T>(
    state: &AppState,
    question: impl std::future::Future<Output = Result<T, crate::presence::PresenceUnavailable>>,
) -> Result<T, ApiError> {
    let unavailable = ApiError::Unavailable("presence is unavailable: redis did not answer");
    match tokio::time::timeout(state.settings.redis_timeout * 2, question).await {
        Ok(Ok(answer)) => Ok(answer),
        _ => Err(unavailable),
    }
}

fn metrics(state: &AppState) -> Response {
    let mut response = state.metrics.encode().into_response();
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_to_their_route_and_room_or_to_404_and_405() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(resolve(&post, "/api/publish"), Ok((Route::Publish, None)));
        assert_eq!(
            resolve(&get, "/api/rooms/team-1.x/history"),
            Ok((Route::RoomHistory, Some("team-1.x")))
        );
        assert_eq!(resolve(&get, "/metrics"), Ok((Route::Metrics, None)));
        assert_eq!(resolve(&get, "/api/rooms"), Ok((Route::Rooms, None)));
        assert_eq!(
            resolve(&get, "/api/rooms/r1/presence"),
            Ok((Route::RoomPresence, Some("r1")))
        );
        assert_eq!(resolve(&get, "/api/hubs"), Ok((Route::Hubs, None)));
        for missing in [
            "/api/rooms//history",
            "/api/rooms/a/b/history",
            "/api/publish/",
            "/api",
            "/",
            "/metrics/x",
        ] {
            assert_eq!(resolve(&get, missing), Err(ApiError::NotFound), "{missing}");
        }
        assert_eq!(
            resolve(&get, "/api/publish"),
            Err(ApiError::MethodNotAllowed { allowed: "POST" })
        );
        assert_eq!(
            resolve(&post, "/metrics"),
            Err(ApiError::MethodNotAllowed { allowed: "GET" })
        );
    }
}
