//! Who may read the API. The API holds who did what, so when `[http] read_tokens` or
//! `trusted_user_header` is configured, `/api` answers only a request that carries one of the
//! tokens (`Authorization: Bearer ...`; compared by their SHA-256 in constant time) or the
//! header the authenticating proxy in front sets. With neither configured it is open to whoever
//! can reach the address, which is loopback by default.
//!
//! Writing (`POST /api/v1/commands`) always needs a pipeline token (`[[http.pipeline_tokens]]`),
//! which names the actor the command is recorded as; a pipeline token may read as well.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::problem::Problem;
use crate::config::{HttpConfig, PipelineToken, TokenHash};

#[derive(Clone)]
pub struct Access {
    tokens: Arc<Vec<TokenHash>>,
    user_header: Option<HeaderName>,
    pipelines: Arc<Vec<PipelineToken>>,
}

impl Access {
    /// The access `[http]` describes; a header name that is not one is an error.
    pub fn from_config(http: &HttpConfig) -> Result<Access, String> {
        let user_header = http
            .trusted_user_header
            .as_deref()
            .map(|name| {
                HeaderName::try_from(name.trim()).map_err(|_| {
                    format!("[http] trusted_user_header `{name}` is not a header name")
                })
            })
            .transpose()?;
        Ok(Access {
            tokens: Arc::new(http.read_tokens.clone()),
            user_header,
            pipelines: Arc::new(http.pipeline_tokens.clone()),
        })
    }

    pub fn is_open(&self) -> bool {
        self.tokens.is_empty() && self.user_header.is_none()
    }

    /// The pipeline whose token the request carries, if any.
    pub fn pipeline(&self, headers: &axum::http::HeaderMap) -> Option<&PipelineToken> {
        let presented = bearer(headers)?;
        // Every configured hash is compared, so the time taken says nothing of which matched.
        let mut found = None;
        for pipeline in self.pipelines.iter() {
            if bool::from(pipeline.hash.0.ct_eq(&presented.0)) {
                found = found.or(Some(pipeline));
            }
        }
        found
    }

    /// Whether the request's headers let it read.
    pub fn allows(&self, headers: &axum::http::HeaderMap) -> bool {
        if self.is_open() {
            return true;
        }
        if let Some(name) = &self.user_header
            && headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| !v.trim().is_empty())
        {
            return true;
        }
        let Some(presented) = bearer(headers) else {
            return false;
        };
        // Every configured hash is compared, so the time taken says nothing of which matched.
        let matched = self
            .tokens
            .iter()
            .fold(subtle::Choice::from(0), |found, hash| {
                found | hash.0.ct_eq(&presented.0)
            });
        bool::from(matched) || self.pipeline(headers).is_some()
    }
}

/// The hash of the bearer token a request carries.
fn bearer(headers: &axum::http::HeaderMap) -> Option<TokenHash> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| TokenHash::of(token.trim()))
}

/// The middleware in front of `/api`: 401 with a problem body unless `access` allows.
pub async fn gate(State(access): State<Access>, request: Request, next: Next) -> Response {
    if access.allows(request.headers()) {
        return next.run(request).await;
    }
    let mut response = Problem::new(
        StatusCode::UNAUTHORIZED,
        "reading the ledger needs a read token (Authorization: Bearer ...) or the SSO proxy",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"dobrobot\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn access(tokens: &[&str], header: Option<&str>) -> Access {
        Access::from_config(&HttpConfig {
            read_tokens: tokens.iter().map(|t| TokenHash::of(t)).collect(),
            trusted_user_header: header.map(str::to_string),
            pipeline_tokens: vec![PipelineToken {
                hash: TokenHash::of("ci-token"),
                actor: crate::domain::UserId::parse("ci").unwrap(),
                roles: Vec::new(),
            }],
            ..HttpConfig::default()
        })
        .unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn a_token_or_the_proxy_header_lets_a_request_read() {
        let gated = access(&["s3cret", "other"], Some("X-Forwarded-Email"));
        assert!(!gated.allows(&headers(&[])));
        assert!(gated.allows(&headers(&[("authorization", "Bearer other")])));
        assert!(gated.allows(&headers(&[("authorization", "bearer s3cret")])));
        assert!(!gated.allows(&headers(&[("authorization", "Bearer s3cre")])));
        assert!(!gated.allows(&headers(&[("authorization", "s3cret")])));
        assert!(gated.allows(&headers(&[("x-forwarded-email", "a@example.com")])));
        assert!(!gated.allows(&headers(&[("x-forwarded-email", " ")])));
        assert!(access(&[], None).allows(&headers(&[])));
        assert!(!access(&["t"], None).allows(&headers(&[("x-forwarded-email", "a")])));
        assert!(gated.allows(&headers(&[("authorization", "Bearer ci-token")])));
    }

    #[test]
    fn only_a_pipeline_token_names_a_pipeline() {
        let gated = access(&["s3cret"], None);
        let actor = |pairs| gated.pipeline(&headers(pairs)).map(|p| p.actor.to_string());
        assert_eq!(
            actor(&[("authorization", "Bearer ci-token")]).as_deref(),
            Some("ci")
        );
        assert_eq!(actor(&[("authorization", "Bearer s3cret")]), None);
        assert_eq!(actor(&[("authorization", "Bearer ci-toke")]), None);
        assert_eq!(actor(&[]), None);
    }

    #[test]
    fn a_bad_header_name_is_a_config_error() {
        let config = HttpConfig {
            trusted_user_header: Some("X Forwarded".into()),
            ..HttpConfig::default()
        };
        assert!(Access::from_config(&config).is_err());
    }
}
