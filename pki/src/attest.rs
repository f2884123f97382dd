//! Attestation beyond one-time tokens: Kubernetes projected service-account
//! tokens (JWTs) verified against the cluster's OIDC JWKS, mapped to
//! `spiffe://DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT`.
//!
//! The algorithm is taken from the key (RSA → RS256, EC P-256 → ES256,
//! EC P-384 → ES384), never from the token: `none` and HMAC tokens are
//! refused. Issuer, audience and expiry are required; the key is looked up
//! by the token's `kid` (or the only key when the set has one).

use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::error::{PkiError, Result};
use crate::spiffe::{SpiffeId, TrustDomain};

/// `[attestation.kubernetes]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// The cluster's JWKS (`kubectl get --raw /openid/v1/jwks`), read at start.
    pub jwks_file: std::path::PathBuf,
    /// Expected `iss` (the cluster's service-account issuer).
    pub issuer: String,
    /// Expected `aud` (the audience of the projected token volume).
    pub audience: String,
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

/// Verifies service-account tokens of one cluster.
pub struct KubernetesAttestor {
    keys: Vec<(Option<String>, Algorithm, DecodingKey)>,
    issuer: String,
    audience: String,
    trust_domain: TrustDomain,
}

fn refused(why: impl Into<String>) -> PkiError {
    PkiError::AttestationRefused(why.into())
}

impl KubernetesAttestor {
    /// Loads the JWKS file; keys of unsupported types are refused.
    pub fn load(cfg: &KubernetesConfig, trust_domain: TrustDomain) -> Result<Self> {
        let text =
            std::fs::read_to_string(&cfg.jwks_file).map_err(|e| PkiError::io(&cfg.jwks_file, e))?;
        Self::from_jwks(&text, &cfg.jwks_file, cfg, trust_domain)
    }

    fn from_jwks(
        text: &str,
        path: &Path,
        cfg: &KubernetesConfig,
        trust_domain: TrustDomain,
    ) -> Result<Self> {
        let bad = |why: String| PkiError::Config {
            path: path.to_path_buf(),
            line: 0,
            message: why,
        };
        let set: JwkSet =
            serde_json::from_str(text).map_err(|e| bad(format!("not a JWKS: {e}")))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                    EllipticCurve::P256 => Algorithm::ES256,
                    EllipticCurve::P384 => Algorithm::ES384,
                    ref other => return Err(bad(format!("unsupported key curve {other:?}"))),
                },
                _ => {
                    return Err(bad(
                        "only RSA and EC (P-256, P-384) keys are accepted".into()
                    ))
                }
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(format!("bad key: {e}")))?;
            keys.push((jwk.common.key_id.clone(), alg, key));
        }
        if keys.is_empty() {
            return Err(bad("the JWKS holds no key".into()));
        }
        Ok(KubernetesAttestor {
            keys,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            trust_domain,
        })
    }

    /// Verifies `jwt` and returns the identity it proves.
    pub fn attest(&self, jwt: &str) -> Result<SpiffeId> {
        let header = jsonwebtoken::decode_header(jwt)
            .map_err(|e| refused(format!("malformed token: {e}")))?;
        let (_, alg, key) = match &header.kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|(k, _, _)| k.as_deref() == Some(kid.as_str()))
                .ok_or_else(|| refused(format!("no key with kid {kid:?} in the JWKS")))?,
            None if self.keys.len() == 1 => &self.keys[0],
            None => return Err(refused("token without kid and several keys in the JWKS")),
        };
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
