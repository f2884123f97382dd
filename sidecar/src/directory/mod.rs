//! The mesh directory: which services exist, where they answer, and the identity each must
//! present. Policy names services from it; the outbound side looks up who must answer.
//!
//! ```toml
//! [[service]]
//! name = "payments"
//! identity = "spiffe://mesh.local/ns/shop/sa/payments"
//! endpoints = [{ port = 8080, address = "10.0.0.5:8080" }]
//! ```
//!
//! `port` is the service port policy names; `address` is where the caller's sidecar dials
//! (the peer's address and port; on the peer that port is redirected to its sidecar, or in
//! explicit mode it is the peer sidecar's inbound listener). In transparent mode the original
//! destination the app dialled is looked up by this address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use rampart_tls::spiffe::SpiffeId;
use serde::Deserialize;
use toml::Spanned;

use crate::source::{FileError, SourceFile};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirectory {
    #[serde(default, rename = "service")]
    services: Vec<Spanned<RawService>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Spanned<String>,
    identity: SpiffeId,
    endpoints: Vec<RawEndpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    port: u16,
    address: SocketAddr,
}

/// One port of a service and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The service port.
    pub port: u16,
    /// Where to dial.
    pub address: SocketAddr,
}

/// A service of the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its name.
    pub name: String,
    /// The identity its sidecar must present.
    pub identity: SpiffeId,
    /// Its ports and addresses.
    pub endpoints: Vec<Endpoint>,
    /// Line in the directory file.
    pub line: usize,
}

impl Service {
    /// The address to dial for `port`, if the service has that port.
    pub fn address_for(&self, port: u16) -> Option<SocketAddr> {
        self.endpoints
            .iter()
            .find(|e| e.port == port)
            .map(|e| e.address)
    }
}

/// The loaded directory.
#[derive(Debug, Clone)]
pub struct Directory {
    source: SourceFile,
    services: Vec<Service>,
    by_name: HashMap<String, usize>,
    by_address: HashMap<SocketAddr, (usize, u16)>,
}

impl Directory {
    /// Reads and checks a directory file.
    pub fn load(path: &Path) -> Result<Self, FileError> {
        Self::from_source(SourceFile::read(path)?)
    }

    /// Checks a directory already read.
    pub fn from_source(source: SourceFile) -> Result<Self, FileError> {
        let raw: RawDirectory = source.parse()?;
        let mut services = Vec::new();
        let mut by_name = HashMap::new();
        let mut by_address: HashMap<SocketAddr, (usize, u16)> = HashMap::new();
        for (i, spanned) in raw.services.into_iter().enumerate() {
            let line_span = spanned.span();
            let raw = spanned.into_inner();
            let field = |f: &str| Some(format!("service[{i}].{f}"));
            let name_span = raw.name.span();
            let name = raw.name.into_inner();
            if !valid_name(&name) {
                return Err(source.error_at(
                    Some(name_span),
                    field("name"),
                    format!("service name `{name}` must be 1-63 characters of [a-z0-9-]"),
                ));
            }
            if by_name.insert(name.clone(), i).is_some() {
                return Err(source.error_at(
                    Some(name_span),
                    field("name"),
                    format!("service `{name}` is listed twice"),
                ));
            }
            if raw.endpoints.is_empty() {
                return Err(source.error_at(
                    Some(line_span.clone()),
                    field("endpoints"),
                    format!("service `{name}` has no endpoints"),
                ));
            }
            let mut endpoints = Vec::new();
            for (j, e) in raw.endpoints.into_iter().enumerate() {
                if e.port == 0 {
                    return Err(source.error_at(
                        Some(line_span.clone()),
                        field(&format!("endpoints[{j}].port")),
                        "port 0 is not a service port".into(),
                    ));
                }
                if let Some((other, _)) = by_address.insert(e.address, (i, e.port)) {
                    let other_name = if other == i {
                        name.clone()
                    } else {
                        services
                            .get(other)
                            .map(|s: &Service| s.name.clone())
                            .unwrap_or_default()
                    };
                    return Err(source.error_at(
                        Some(line_span.clone()),
                        field(&format!("endpoints[{j}].address")),
                        format!(
                            "address {} is already an endpoint of `{other_name}`: an address must name one service port",
                            e.address
                        ),
                    ));
                }
                endpoints.push(Endpoint {
                    port: e.port,
                    address: e.address,
                });
            }
            let (line, _) = line_of(&source, line_span.start);
            services.push(Service {
                name,
                identity: raw.identity,
                endpoints,
                line,
            });
        }
        Ok(Directory {
            source,
            services,
            by_name,
            by_address,
        })
    }

    /// An empty directory (no services).
    pub fn empty() -> Self {
        Directory {
            source: SourceFile::from_text(Path::new("<none>"), String::new()),
            services: Vec::new(),
            by_name: HashMap::new(),
            by_address: HashMap::new(),
        }
    }

    /// The file it came from.
    pub fn source(&self) -> &SourceFile {
        &self.source
    }

    /// All services, in file order.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// A service by name.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.by_name.get(name).and_then(|&i| self.services.get(i))
    }

    /// The service and service port behind an address (transparent mode).
    pub fn by_address(&self, address: &SocketAddr) -> Option<(&Service, u16)> {
        let &(i, port) = self.by_address.get(address)?;
        Some((self.services.get(i)?, port))
    }
}

/// Service and rule names: DNS-label-like, so they read the same in logs and metrics.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn line_of(source: &SourceFile, offset: usize) -> (usize, usize) {
    let e = source.error_at(Some(offset..offset), None, String::new());
    (e.line.unwrap_or(0), e.column.unwrap_or(0))
}

#[cfg(test)]
mod tests;
