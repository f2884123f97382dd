//! A webhook receiver on loopback for tests (feature `test-support`), on hyper.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Listens on `127.0.0.1:0`; returns the URL to configure (`http://…/hook`)
/// and a channel with the JSON body of each POST to it, answered `204`.
/// Anything else (other method or path, a body that is not JSON) is answered
/// `400` and not passed on, so a test waiting for the POST fails.
pub async fn webhook_receiver() -> (String, mpsc::UnboundedReceiver<serde_json::Value>) {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("webhook receiver: cannot bind loopback: {e}"),
    };
    let url = match listener.local_addr() {
        Ok(addr) => format!("http://{addr}/hook"),
        Err(e) => panic!("webhook receiver: {e}"),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let tx = tx.clone();
                async move {
                    let wanted = req.method() == Method::POST && req.uri().path() == "/hook";
                    let body = req.into_body().collect().await?.to_bytes();
                    let status = match serde_json::from_slice(&body) {
                        Ok(json) if wanted => {
                            let _ = tx.send(json);
                            StatusCode::NO_CONTENT
                        }
                        _ => StatusCode::BAD_REQUEST,
                    };
                    let mut response = Response::new(Empty::<Bytes>::new());
                    *response.status_mut() = status;
                    Ok::<_, hyper::Error>(response)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(sock), service),
            );
        }
    });
    (url, rx)
}
