//! Its own test binary (its own process), so that nothing else installs a rustls crypto
//! provider first: the `kurrentdb` client installs aws-lc-rs as the process default itself when
//! none is installed, and leaves an installed one alone.

use esdb_double::Double;
use kurrentdb::Client;

#[tokio::test]
async fn the_client_installs_a_crypto_provider_when_none_is() {
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
    let double = Double::start().await;
    let client = Client::new(double.url().parse().unwrap()).unwrap();
    client.server_info().await.unwrap();
    assert!(rustls::crypto::CryptoProvider::get_default().is_some());
}
