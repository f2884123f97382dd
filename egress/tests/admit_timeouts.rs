//! Any peek timeout is a valid one: the admission of a connection never computes a deadline
//! that overflows (a `peek_timeout` of `i64::MAX` seconds panicked `Instant + Duration` on
//! every connection before it was capped).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use rampart_egress::{admit, EgressPolicy, Mode};
use tokio::io::AsyncWriteExt;

fn policy() -> EgressPolicy {
    let text = "[[hosts]]\nname = \"www\"\nhost = \"www.example.test\"\nports = [443]\nprotocol = \"tls\"\n";
    EgressPolicy::from_toml(text, "admit.toml").unwrap()
}

#[tokio::test]
async fn huge_peek_timeouts_admit_without_overflow() {
    let policy = policy();
    let mode = Mode::Transparent {
        original_dst: SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 443)),
    };
    let hello = rampart_egress::testkit::client_hello("www.example.test").unwrap();
    for peek in [
        Duration::from_secs(i64::MAX as u64),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ] {
        let (mut app, mut ours) = tokio::io::duplex(64 * 1024);
        app.write_all(&hello).await.unwrap();
        let admitted = tokio::time::timeout(
            Duration::from_secs(10),
            admit(&policy, peek, &mut ours, mode),
        )
        .await
        .unwrap_or_else(|_| panic!("no decision within 10 s for {peek:?}"))
        .map_err(|(d, _)| d.to_string())
        .unwrap();
        assert_eq!(admitted.prefix, hello, "{peek:?}");
    }
}
