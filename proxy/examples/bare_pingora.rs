//! The throughput baseline of issue #4: Pingora 0.9 with no filters at all, forwarding every
//! request to one upstream. Same allocator and build profile as the edge, Pingora's own rustls
//! listener. `bench.sh` against it and the nginx peer in the same run shows what the framework
//! alone reaches (docs/proxy.md, "Throughput").
//!
//! ```sh
//! cargo build --profile dist -p rampart-proxy --example bare_pingora
//! taskset -c 0 target/dist/examples/bare_pingora 127.0.0.1:30080 127.0.0.1:30443 \
//!     /var/tmp/rampart-peers/pki/server.crt /var/tmp/rampart-peers/pki/server.key 127.0.0.1:38080
//! ../shared/peers/bench.sh --target https://127.0.0.1:30443/ --peer https://127.0.0.1:38443/ \
//!     --duration 8 --rounds 5
//! ```
#![forbid(unsafe_code)]

use async_trait::async_trait;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_proxy::{ProxyHttp, Session};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    upstream: String,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora_error::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, plain, tls, cert, key, upstream] = args.as_slice() else {
        eprintln!("usage: bare_pingora PLAIN_ADDR TLS_ADDR CERT KEY UPSTREAM_ADDR");
        std::process::exit(2);
    };
    // One thread without work stealing, as the edge runs in the bench (`[server] threads = 1`).
    let conf = ServerConf {
        threads: 1,
        work_stealing: false,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut svc = pingora_proxy::http_proxy_service(
        &server.configuration,
        Bare {
            upstream: upstream.clone(),
        },
    );
    svc.add_tcp(plain);
    if let Err(e) = svc.add_tls(tls, cert, key) {
        eprintln!("bare_pingora: TLS listener {tls}: {e}");
        std::process::exit(1);
    }
    server.add_service(svc);
    server.run_forever();
}
