//! The call deadline a client sends as `grpc-timeout`, enforced on the server side as the real
//! server (ASP.NET Core gRPC) does: a call whose answer is not ready in time is cancelled and
//! answered `DEADLINE_EXCEEDED`. This matters because the `kurrentdb` client does not enforce its
//! own deadlines (it calls through a bare hyper client, not a tonic channel); it relies on the
//! server. A cancelled append writes nothing.
//!
//! As in tonic's own server, the deadline covers producing the answer (for a streaming answer,
//! its start), not the time a client takes to consume a stream.

use std::convert::Infallible;
use std::time::Duration;

use futures::future::BoxFuture;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::http::{HeaderMap, Request, Response};
use tonic::codegen::{Context, Poll, Service};

#[derive(Clone)]
pub(crate) struct Deadlines<S> {
    inner: S,
}

impl<S> Deadlines<S> {
    pub fn new(inner: S) -> Self {
        Deadlines { inner }
    }
}

impl<S, B> Service<Request<B>> for Deadlines<S>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let deadline = grpc_timeout(request.headers());
        let answer = self.inner.call(request);
        Box::pin(async move {
            match deadline {
                None => answer.await,
                Some(deadline) => match tokio::time::timeout(deadline, answer).await {
                    Ok(answer) => answer,
                    Err(_) => Ok(Status::deadline_exceeded("Deadline Exceeded").into_http()),
                },
            }
        })
    }
}

/// Parses `grpc-timeout`: up to eight digits and a unit (H, M, S, m, u, n).
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_unit() {
        let cases = [
            ("2H", Duration::from_secs(7200)),
            ("3M", Duration::from_secs(180)),
            ("10S", Duration::from_secs(10)),
            ("250m", Duration::from_millis(250)),
            ("1500u", Duration::from_micros(1500)),
            ("2000000n", Duration::from_millis(2)),
        ];
        for (header, duration) in cases {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", header.parse().unwrap());
            assert_eq!(grpc_timeout(&headers), Some(duration), "{header}");
        }
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", "soon".parse().unwrap());
        assert_eq!(grpc_timeout(&headers), None);
    }
}
