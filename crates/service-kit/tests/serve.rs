//! The accept loop every listener shares, driven over loopback by real HTTP/1.1 and HTTP/2
//! clients: both protocols served on one port with the peer's address, a preface that arrives in
//! pieces, and a graceful shutdown that answers what is in flight and closes what is idle.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, extract::ConnectInfo, routing::get};
use http_body_util::{BodyExt, Empty};
use hyper::{Request, body::Bytes};
use hyper_util::rt::{TokioExecutor, TokioIo};
use service_kit::Shutdown;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    task::JoinHandle,
};

struct Served {
    addr: SocketAddr,
    shutdown: Shutdown,
    task: JoinHandle<anyhow::Result<()>>,
}

async fn start() -> Served {
    let router = Router::new()
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "done"
            }),
        );
    let listener = service_kit::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let task = tokio::spawn(service_kit::serve(listener, router, shutdown.clone()));
    Served {
        addr,
        shutdown,
        task,
    }
}

fn get_request(path: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("http://localhost{path}"))
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap()
}

#[tokio::test]
async fn http1_and_http2_are_served_on_one_port_with_the_peer_address() {
    let served = start().await;

    let tcp = TcpStream::connect(served.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let (mut h1, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    for _ in 0..2 {
        let answer = h1.send_request(get_request("/peer")).await.unwrap();
        assert_eq!(answer.version(), hyper::Version::HTTP_11);
        let body = answer.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, local.to_string().as_bytes(), "HTTP/1.1 keep-alive");
    }

    let tcp = TcpStream::connect(served.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let (mut h2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let answer = h2.send_request(get_request("/peer")).await.unwrap();
    assert_eq!(answer.version(), hyper::Version::HTTP_2);
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body,
        local.to_string().as_bytes(),
        "HTTP/2 with prior knowledge"
    );

    served.shutdown.cancel();
    served.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_http2_preface_sent_in_pieces_is_waited_for() {
    let served = start().await;
    let mut tcp = TcpStream::connect(served.addr).await.unwrap();
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    tcp.write_all(&preface[..2]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    tcp.write_all(&preface[2..]).await.unwrap();
    // An empty SETTINGS frame, as every client's first frame.
    tcp.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut header = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut header))
        .await
        .expect("the server answers the preface")
        .unwrap();
    assert_eq!(
        header[3], 4,
        "the server's first frame is its SETTINGS: {header:?}"
    );
    served.shutdown.cancel();
    drop(tcp);
    served.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_shutdown_answers_what_is_in_flight_and_closes_what_is_idle() {
    let served = start().await;
    // Connected and silent: still at its handshake when the shutdown comes.
    let mut silent = TcpStream::connect(served.addr).await.unwrap();
    // Connected, answered once, idle since.
    let tcp = TcpStream::connect(served.addr).await.unwrap();
    let (mut idle, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    let idle_connection = tokio::spawn(connection);
    idle.send_request(get_request("/peer")).await.unwrap();
    // In flight when the shutdown comes.
    let tcp = TcpStream::connect(served.addr).await.unwrap();
    let (mut busy, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    let slow = tokio::spawn(async move { busy.send_request(get_request("/slow")).await });
    tokio::time::sleep(Duration::from_millis(100)).await;

    served.shutdown.cancel();
    let answer = slow.await.unwrap().expect("the call in flight is answered");
    assert_eq!(answer.status(), 200);
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, &b"done"[..]);
    tokio::time::timeout(Duration::from_secs(10), served.task)
        .await
        .expect("the server stops once nothing is in flight")
        .unwrap()
        .unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut byte))
        .await
        .expect("the silent connection is closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    tokio::time::timeout(Duration::from_secs(5), idle_connection)
        .await
        .expect("the idle connection is closed")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(served.addr).await.is_err(),
        "no new connection is accepted"
    );
}
