//! The HTTP listener: `axum::serve` has no timers (hyper's header-read
//! timeout is off without one), no request timeout and no connection cap, so
//! a few hundred sockets that send a byte a second would hold every file
//! descriptor and take the server off the air. This loop serves the same
//! `Router` with:
//! - a cap on open connections (`max_connections`, clamped below the
//!   process's file limit so the database and the push client keep theirs);
//!   once reached, new connections wait in the kernel's backlog;
//! - HTTP/1 header-read timeout, which hyper also applies while a keep-alive
//!   connection waits for its next request (so it is the idle timeout too);
//! - a body timeout and a request timeout (JSON 408s, see [`limit_time`]);
//! - HTTP/2 (prior knowledge) keep-alive pings and a stream cap;
//! - the peer address as `ConnectInfo`, for per-client limits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::AppError;

/// Time and connection limits of the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time to send a request's headers, and to start the next request on a
    /// kept-alive connection.
    pub header_timeout: Duration,
    /// Time to send a request's body once its headers are in.
    pub body_timeout: Duration,
    /// Time for the whole request, body and handler included.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// File descriptors kept free for the database, the push client and logs.
const RESERVED_FILES: u64 = 128;

impl Limits {
    /// The connection cap actually used: `max_connections`, but never so
    /// many that accepting them would exhaust the file limit (`nofile`).
    pub fn effective_connections(&self, nofile: Option<u64>) -> usize {
        let room = nofile.map_or(usize::MAX, |n| {
            usize::try_from(n.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX)
        });
        self.max_connections.clamp(1, room.max(1))
    }
}

/// The soft limit on open files (`RLIMIT_NOFILE`), if the OS tells.
pub fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own; no other effect.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Adds the body and request timeouts to `router` (see [`limit_time`]).
pub fn with_time_limits(router: Router, limits: Limits) -> Router {
    router.layer(axum::middleware::from_fn_with_state(limits, limit_time))
}

/// Reads the body (API bodies are small: at most [`crate::MAX_BODY_BYTES`])
/// within `body_timeout`, then runs the request within `request_timeout`;
/// either running out is a JSON 408, and the connection is closed.
async fn limit_time(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, crate::MAX_BODY_BYTES);
    let bytes = match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return AppError::BodyTooLarge.into_response(),
        Err(_) => return timed_out(),
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => timed_out(),
    }
}

fn timed_out() -> Response {
    let mut response = AppError::RequestTimeout.into_response();
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open
/// requests finish (at most 10 s).
///
/// # Errors
/// Never for a single connection's failure; only if the listener cannot
/// report its address.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let cap = limits.effective_connections(open_file_limit());
    if cap < limits.max_connections {
        tracing::warn!(cap, "connection cap lowered to fit the open-file limit (ulimit -n)");
    }
    let permits = Arc::new(Semaphore::new(cap));
    let builder = connection_builder(limits);
    let graceful = GracefulShutdown::new();
    let router = with_time_limits(router, limits);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // unreachable: the semaphore is never closed
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that breaks off or times out ends its own connection only.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after 10 s; closing them");
    }
    Ok(())
}

fn connection_builder(limits: Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100)
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(10));
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_room_under_the_file_limit() {
        let limits = Limits::default();
        assert_eq!(limits.effective_connections(None), 1024);
        assert_eq!(limits.effective_connections(Some(1_048_576)), 1024);
        assert_eq!(limits.effective_connections(Some(256)), 128);
        assert_eq!(limits.effective_connections(Some(64)), 16);
    }
}
