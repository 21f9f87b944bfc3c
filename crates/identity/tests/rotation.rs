//! Key rotation against a live JWKS endpoint: an unknown `kid` triggers one refresh, and further
//! unknown `kid`s within the cooldown do not trigger more fetches.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
};

use identity::{AuthError, Claims, KeySource, SigningKey, TrustedIssuer, Verifier, jwks_document};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minimal HTTP server answering every request with the current JWKS, counting fetches.
async fn jwks_server(jwks: Arc<Mutex<serde_json::Value>>, fetches: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let body = jwks.lock().unwrap().to_string();
            fetches.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

fn token(key: &SigningKey) -> String {
    key.sign(&Claims::new(
        "https://idp.test",
        "alice",
        "switchboard",
        vec![],
        60,
    ))
    .unwrap()
}

#[tokio::test]
async fn unknown_keys_refresh_once_and_rotation_is_picked_up() {
    let old = SigningKey::generate().unwrap();
    let new = SigningKey::generate().unwrap();
    let jwks = Arc::new(Mutex::new(jwks_document(&[&old])));
    let fetches = Arc::new(AtomicUsize::new(0));
    let url = jwks_server(jwks.clone(), fetches.clone()).await;
    let verifier = Verifier::new(
        "switchboard",
        vec![TrustedIssuer::new("https://idp.test", KeySource::Url(url))],
    )
    .unwrap();

    assert_eq!(verifier.verify(&token(&old)).await.unwrap().sub, "alice");
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // The issuer rotates: the new key's first token triggers one refresh and verifies.
    *jwks.lock().unwrap() = jwks_document(&[&new]);
    assert_eq!(verifier.verify(&token(&new)).await.unwrap().sub, "alice");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // Forged kids within the cooldown cost no fetches.
    for _ in 0..5 {
        let forged = SigningKey::generate().unwrap();
        assert_eq!(
            verifier.verify(&token(&forged)).await,
            Err(AuthError::UnknownKey)
        );
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}
