//! Attestation beyond one-time tokens: Kubernetes projected service-account
//! tokens (JWTs) verified against the cluster's OIDC JWKS, mapped to
//! `spiffe://DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT`.
//!
//! The algorithm is taken from the key (RSA → RS256, EC P-256 → ES256,
//! EC P-384 → ES384), never from the token: `none` and HMAC tokens are
//! refused. Issuer, audience and expiry are required; the key is looked up
//! by the token's `kid` (or the only key when the set has one).
//!
//! The key set comes from a file (`jwks_file`) or the cluster's JWKS URL
//! (`jwks_url`, https only; CA bundle `jwks_ca_file`, else the public web
//! roots). It is refreshed every `jwks_refresh_ms` and, rate-limited to one
//! per `jwks_unknown_kid_refresh_ms`, when a token names a `kid` the set
//! does not hold (a key the cluster added). A failed refresh (unreachable,
//! timeout, HTTP error, oversized or malformed answer) is logged and counted
//! (`rampart_pki_jwks_refreshes_total{result="failed"}`) and the last good
//! key set stays in use; a key removed from the JWKS stops verifying at the
//! first refresh that no longer lists it.

use rampart_ops::config::Bounds;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rampart_tls::web::{WebClient, WebUrl};
use serde::Deserialize;

use crate::error::{PkiError, Result};
use crate::metrics::Metrics;
use crate::spiffe::{SpiffeId, TrustDomain};

/// `[attestation.kubernetes]`: exactly one of `jwks_file` and `jwks_url`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// The cluster's JWKS in a file (`kubectl get --raw /openid/v1/jwks`),
    /// re-read when it changes.
    pub jwks_file: Option<PathBuf>,
    /// The cluster's JWKS URL (`https://…/openid/v1/jwks`), https only.
    pub jwks_url: Option<JwksUrl>,
    /// PEM bundle of the CAs that may sign the JWKS server's certificate
    /// (in a pod: `/var/run/secrets/kubernetes.io/serviceaccount/ca.crt`).
    /// Without it, the public web roots.
    pub jwks_ca_file: Option<PathBuf>,
    /// A bearer token sent with the JWKS request (re-read at each fetch),
    /// for API servers that do not serve the JWKS anonymously.
    pub jwks_bearer_token_file: Option<PathBuf>,
    /// Refresh period.
    #[serde(default = "default_refresh_ms")]
    pub jwks_refresh_ms: u64,
    /// Least time between two refreshes caused by a token with an unknown `kid`.
    #[serde(default = "default_unknown_kid_refresh_ms")]
    pub jwks_unknown_kid_refresh_ms: u64,
    /// Deadline of one fetch (connect, TLS, request, whole body).
    #[serde(default = "default_fetch_timeout_ms")]
    pub jwks_fetch_timeout_ms: u64,
    /// Largest JWKS answer accepted.
    #[serde(default = "default_max_bytes")]
    pub jwks_max_bytes: usize,
    /// Expected `iss` (the cluster's service-account issuer).
    pub issuer: String,
    /// Expected `aud` (the audience of the projected token volume).
    pub audience: String,
}

fn default_refresh_ms() -> u64 {
    300_000
}
fn default_unknown_kid_refresh_ms() -> u64 {
    10_000
}
fn default_fetch_timeout_ms() -> u64 {
    5_000
}
fn default_max_bytes() -> usize {
    1 << 20
}

/// `jwks_refresh_ms`: 1 ms to one day.
pub const JWKS_REFRESH_MS: Bounds = Bounds::new(1, 86_400_000, "ms");
/// `jwks_unknown_kid_refresh_ms`: 0 to one day.
pub const JWKS_UNKNOWN_KID_REFRESH_MS: Bounds = Bounds::new(0, 86_400_000, "ms");
/// `jwks_fetch_timeout_ms`: 1 ms to one minute.
pub const JWKS_FETCH_TIMEOUT_MS: Bounds = Bounds::new(1, 60_000, "ms");
/// `jwks_max_bytes`: 1 byte to 16 MiB.
pub const JWKS_MAX_BYTES: Bounds = Bounds::new(1, 16 << 20, "bytes");

impl KubernetesConfig {
    /// Cross-field checks: `(field, why)` of the first one that fails (the numbers' ranges
    /// are [`Self::ranges`]).
    pub fn check(&self) -> std::result::Result<(), (&'static str, &'static str)> {
        match (&self.jwks_file, &self.jwks_url) {
            (None, None) => {
                return Err((
                    "[attestation.kubernetes]",
                    "give exactly one of jwks_file and jwks_url",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(("jwks_file", "give exactly one of jwks_file and jwks_url"))
            }
            (Some(_), None)
                if self.jwks_ca_file.is_some() || self.jwks_bearer_token_file.is_some() =>
            {
                return Err((
                    "jwks_ca_file",
                    "jwks_ca_file and jwks_bearer_token_file go with jwks_url",
                ))
            }
            _ => {}
        }
        Ok(())
    }

    /// Each number of the table: `(field, value, range)`, checked at load by the config.
    pub fn ranges(&self) -> [(&'static str, u64, Bounds); 4] {
        [
            ("jwks_refresh_ms", self.jwks_refresh_ms, JWKS_REFRESH_MS),
            (
                "jwks_unknown_kid_refresh_ms",
                self.jwks_unknown_kid_refresh_ms,
                JWKS_UNKNOWN_KID_REFRESH_MS,
            ),
            (
                "jwks_fetch_timeout_ms",
                self.jwks_fetch_timeout_ms,
                JWKS_FETCH_TIMEOUT_MS,
            ),
            ("jwks_max_bytes", self.jwks_max_bytes as u64, JWKS_MAX_BYTES),
        ]
    }
}

/// An `https://HOST[:PORT]/PATH` URL, parsed at load (`rampart_tls::web`'s
/// URL rules, https only).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct JwksUrl(WebUrl);

impl TryFrom<String> for JwksUrl {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        let url = WebUrl::parse(&s).map_err(|e| e.to_string())?;
        if !url.is_https() {
            return Err(format!("{s:?}: the JWKS is fetched over https only"));
        }
        Ok(JwksUrl(url))
    }
}

impl std::fmt::Display for JwksUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(rename = "kubernetes.io", default)]
    kubernetes: Option<KubeClaim>,
}

#[derive(Deserialize)]
struct KubeClaim {
    namespace: String,
    serviceaccount: Named,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

/// One verified key set: (kid, algorithm, key).
struct KeySet(Vec<(Option<String>, Algorithm, DecodingKey)>);

impl KeySet {
    /// Parses a JWKS; keys of unsupported types refuse the whole set.
    fn parse(text: &[u8]) -> std::result::Result<Self, String> {
        let set: JwkSet = serde_json::from_slice(text).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                    EllipticCurve::P256 => Algorithm::ES256,
                    EllipticCurve::P384 => Algorithm::ES384,
                    ref other => return Err(format!("unsupported key curve {other:?}")),
                },
                _ => return Err("only RSA and EC (P-256, P-384) keys are accepted".into()),
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("bad key: {e}"))?;
            keys.push((jwk.common.key_id.clone(), alg, key));
        }
        if keys.is_empty() {
            return Err("the JWKS holds no key".into());
        }
        Ok(KeySet(keys))
    }

    /// The key a token names by `kid` (or the only key when it names none).
    fn find(&self, kid: Option<&str>) -> std::result::Result<(&Algorithm, &DecodingKey), String> {
        match kid {
            Some(kid) => self
                .0
                .iter()
                .find(|(k, _, _)| k.as_deref() == Some(kid))
                .map(|(_, alg, key)| (alg, key))
                .ok_or_else(|| format!("no key with kid {kid:?} in the JWKS")),
            None => match self.0.as_slice() {
                [(_, alg, key)] => Ok((alg, key)),
                [] => Err("the JWKS is not loaded (see the CA's log)".into()),
                _ => Err("token without kid and several keys in the JWKS".into()),
            },
        }
    }
}

/// Where the key set comes from.
enum Source {
    /// A file, re-read when its length or modification time changes.
    File {
        path: PathBuf,
        seen: Mutex<Option<(u64, SystemTime)>>,
    },
    /// An https URL.
    Url(Fetcher),
}

/// Fetches the JWKS over https with hyper, bounded in time and size. The
/// URL rules, roots and TLS settings are `rampart_tls::web`'s (shared with
/// the alert webhook).
struct Fetcher {
    client: WebClient,
    bearer_token_file: Option<PathBuf>,
    timeout: Duration,
    max_bytes: usize,
}

impl Fetcher {
    fn new(cfg: &KubernetesConfig, url: &JwksUrl) -> Result<Self> {
        Ok(Fetcher {
            client: WebClient::new(url.0.clone(), cfg.jwks_ca_file.as_deref())
                .map_err(rampart_tls::TlsError::from)?,
            bearer_token_file: cfg.jwks_bearer_token_file.clone(),
            timeout: Duration::from_millis(cfg.jwks_fetch_timeout_ms),
            max_bytes: cfg.jwks_max_bytes,
        })
    }

    async fn fetch(&self) -> std::result::Result<Bytes, String> {
        tokio::time::timeout(self.timeout, self.exchange())
            .await
            .map_err(|_| format!("no complete answer within {:?}", self.timeout))?
    }

    async fn exchange(&self) -> std::result::Result<Bytes, String> {
        use http::header;
        // Read before connecting: an unreadable token opens no connection.
        let token = match &self.bearer_token_file {
            Some(file) => Some(
                tokio::fs::read_to_string(file)
                    .await
                    .map_err(|e| format!("bearer token file {}: {e}", file.display()))?,
            ),
            None => None,
        };
        let url = self.client.url();
        let tls = self
            .client
            .connect()
            .await
            .map_err(|e| format!("connecting to {}:{}: {e}", url.host(), url.port()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let driver = tokio::spawn(conn);
        let mut request = http::Request::get(url.path_and_query())
            .header(header::HOST, url.host_header())
            .header(header::ACCEPT, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", token.trim()));
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("request: {e}"))?;
        let result = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("HTTP: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("HTTP status {}", response.status()));
            }
            Limited::new(response.into_body(), self.max_bytes)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| format!("reading the answer (at most {} bytes): {e}", self.max_bytes))
        }
        .await;
        driver.abort();
        result
    }
}

/// Verifies service-account tokens of one cluster.
pub struct KubernetesAttestor {
    keys: ArcSwap<KeySet>,
    source: Source,
    issuer: String,
    audience: String,
    trust_domain: TrustDomain,
    refresh_every: Duration,
    unknown_kid_gap: Duration,
    /// When the last refresh caused by an unknown `kid` started.
    last_unknown_kid_refresh: Mutex<Option<Instant>>,
    /// One refresh at a time; a token waiting for one waits on this.
    refreshing: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
}

fn refused(why: impl Into<String>) -> PkiError {
    PkiError::AttestationRefused(why.into())
}

/// What a refresh found.
enum Fetched {
    New(KeySet),
    Unchanged,
}

impl KubernetesAttestor {
    /// Loads the key set (a file must load; a URL that fails at start is
    /// logged, counted and retried: tokens are refused until it answers)
    /// and starts the refresh task, which ends with the attestor.
    pub async fn start(
        cfg: &KubernetesConfig,
        trust_domain: TrustDomain,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>> {
        let source = match (&cfg.jwks_file, &cfg.jwks_url) {
            (Some(path), None) => Source::File {
                path: path.clone(),
                seen: Mutex::new(None),
            },
            (None, Some(url)) => Source::Url(Fetcher::new(cfg, url)?),
            _ => {
                return Err(PkiError::BadRequest(
                    "[attestation.kubernetes]: give exactly one of jwks_file and jwks_url".into(),
                ))
            }
        };
        let file = match &source {
            Source::File { path, .. } => Some(path.clone()),
            Source::Url(_) => None,
        };
        let attestor = Arc::new(KubernetesAttestor {
            keys: ArcSwap::from_pointee(KeySet(Vec::new())),
            source,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            trust_domain,
            refresh_every: Duration::from_millis(cfg.jwks_refresh_ms),
            unknown_kid_gap: Duration::from_millis(cfg.jwks_unknown_kid_refresh_ms),
            last_unknown_kid_refresh: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            metrics,
        });
        match file {
            // A file must hold a good key set at start.
            Some(path) => match attestor.fetch().await {
                Ok(Fetched::New(set)) => attestor.install(set),
                Ok(Fetched::Unchanged) => {}
                Err(message) => {
                    return Err(PkiError::Config {
                        path,
                        line: 0,
                        message,
                    })
                }
            },
            None => attestor.refresh().await,
        }
        tokio::spawn(Self::refresh_loop(
            Arc::downgrade(&attestor),
            attestor.refresh_every,
        ));
        Ok(attestor)
    }

    async fn refresh_loop(me: Weak<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            let Some(me) = me.upgrade() else { return };
            me.refresh().await;
        }
    }

    fn install(&self, set: KeySet) {
        self.metrics.jwks_keys.set(set.0.len() as i64);
        self.keys.store(Arc::new(set));
    }

    fn source_name(&self) -> String {
        match &self.source {
            Source::File { path, .. } => path.display().to_string(),
            Source::Url(f) => f.client.url().to_string(),
        }
    }

    async fn fetch(&self) -> std::result::Result<Fetched, String> {
        match &self.source {
            Source::File { path, seen } => {
                let meta = tokio::fs::metadata(path).await.map_err(|e| e.to_string())?;
                let state = (meta.len(), meta.modified().map_err(|e| e.to_string())?);
                if seen.lock().map_err(|_| "poisoned")?.as_ref() == Some(&state) {
                    return Ok(Fetched::Unchanged);
                }
                let text = tokio::fs::read(path).await.map_err(|e| e.to_string())?;
                let set = KeySet::parse(&text)?;
                // Only a file that parsed counts as seen: a bad file stays a failed refresh
                // (and keeps the alert firing) until it is fixed.
                *seen.lock().map_err(|_| "poisoned")? = Some(state);
                Ok(Fetched::New(set))
            }
            Source::Url(fetcher) => KeySet::parse(&fetcher.fetch().await?).map(Fetched::New),
        }
    }

    /// Fetches the key set once; on failure the last good set stays.
    async fn refresh(&self) {
        let _one = self.refreshing.lock().await;
        let result = match self.fetch().await {
            Ok(Fetched::New(set)) => {
                tracing::debug!(source = %self.source_name(), keys = set.0.len(), "JWKS refreshed");
                self.install(set);
                "ok"
            }
            Ok(Fetched::Unchanged) => "unchanged",
            Err(error) => {
                tracing::warn!(
                    source = %self.source_name(),
                    %error,
                    keys_kept = self.keys.load().0.len(),
                    "JWKS refresh failed; the last good key set stays in use"
                );
                "failed"
            }
        };
        self.metrics
            .jwks_refreshes
            .with_label_values(&[result])
            .inc();
    }

    /// A token named a `kid` the set lacks: refresh, unless one ran within
    /// `jwks_unknown_kid_refresh_ms` (then wait only for one in flight).
    async fn refresh_for_unknown_kid(&self) {
        if self.refreshing.try_lock().is_err() {
            // One is in flight: its result is what a new one would find.
            drop(self.refreshing.lock().await);
            return;
        }
        let due = match self.last_unknown_kid_refresh.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|t| t.elapsed() >= self.unknown_kid_gap);
                if due {
                    *last = Some(Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        if due {
            self.refresh().await;
        }
    }

    /// Verifies `jwt` and returns the identity it proves. A `kid` the key
    /// set lacks triggers a (rate-limited) refresh before the token is refused.
    pub async fn attest(&self, jwt: &str) -> Result<SpiffeId> {
        let header = jsonwebtoken::decode_header(jwt)
            .map_err(|e| refused(format!("malformed token: {e}")))?;
        let mut keys = self.keys.load_full();
        if keys.find(header.kid.as_deref()).is_err() {
            self.refresh_for_unknown_kid().await;
            keys = self.keys.load_full();
        }
        let (alg, key) = keys.find(header.kid.as_deref()).map_err(refused)?;
        if header.alg != *alg {
            return Err(refused(format!(
                "token algorithm {:?} does not match its key ({alg:?})",
                header.alg
            )));
        }
        let mut v = Validation::new(*alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 30;
        let data = jsonwebtoken::decode::<Claims>(jwt, key, &v)
            .map_err(|e| refused(format!("service-account token: {e}")))?;
        let c = data.claims;
        let from_sub = c
            .sub
            .strip_prefix("system:serviceaccount:")
            .and_then(|r| r.split_once(':'))
            .map(|(ns, sa)| (ns.to_string(), sa.to_string()))
            .ok_or_else(|| refused(format!("sub {:?} is not a service account", c.sub)))?;
        if let Some(k) = &c.kubernetes {
            if (k.namespace.as_str(), k.serviceaccount.name.as_str())
                != (from_sub.0.as_str(), from_sub.1.as_str())
            {
                return Err(refused("sub and kubernetes.io claims disagree"));
            }
        }
        SpiffeId::workload(&self.trust_domain, &from_sub.0, &from_sub.1).map_err(PkiError::from)
    }
}
