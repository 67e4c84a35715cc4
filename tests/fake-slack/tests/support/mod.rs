//! The slack-morphism client the way a bot builds it, pointed at a fake Slack.

// Each test binary uses its own subset of these.
#![allow(dead_code)]

use fake_slack::FakeSlack;
use slack_morphism::prelude::*;

/// A slack-morphism client talking plain HTTP to `slack`.
///
/// Two things differ from production set-up, both forced by the fake being plain HTTP:
/// `SlackClientHyperConnector::new()` builds an `https_only` connector, so the connector is
/// built here with `https_or_http`; and its TLS config has no roots (nothing here speaks TLS),
/// which also keeps the test independent of the machine's certificate store. The crypto
/// provider is installed because in dobrobot's build rustls has both `ring` and `aws-lc-rs`
/// compiled in and cannot pick one by itself (`-p fake-slack` alone has only `ring`).
pub fn connector(slack: &FakeSlack) -> SlackClientHyperHttpsConnector {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    SlackClientHyperConnector::from(https).with_slack_api_url(&slack.api_url())
}

pub fn client(slack: &FakeSlack) -> SlackHyperClient {
    SlackClient::new(connector(slack))
}

pub fn bot_token() -> SlackApiToken {
    SlackApiToken::new(fake_slack::BOT_TOKEN.into())
}

pub fn app_token() -> SlackApiToken {
    SlackApiToken::new(fake_slack::APP_TOKEN.into())
}
