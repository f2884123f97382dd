//! rustls configs published on `tokio::sync::watch` channels: each new identity (a renewed
//! SVID) becomes one new server config and one new client config, built together and sent
//! together. A handshake takes the newest config when it starts ([`LatestAcceptor`],
//! [`LatestConnector`]); connections already open keep the config they started with.
//!
//! The trust bundle is not part of a generation: configs share the bundle's verifiers, so a
//! bundle or revocation update reaches every config at once without a rebuild.
//!
//! Publishing is two steps when a caller must change other state all or nothing (a reload of
//! a policy and an SVID together): [`MeshConfigs::prepare`] builds and checks, fallibly;
//! [`MeshConfigs::publish_prepared`] sends, and cannot fail.

use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::bundle::BundleHandle;
use crate::config::{mesh_client_config, mesh_server_config, MeshOptions};
use crate::error::Result;
use crate::identity::Identity;

/// A workload's mesh configs, one generation per identity, published on watch channels.
#[derive(derive_more::Debug)]
pub struct MeshConfigs {
    bundle: BundleHandle,
    options: MeshOptions,
    #[debug(skip)]
    server_tx: watch::Sender<Arc<ServerConfig>>,
    #[debug(skip)]
    client_tx: watch::Sender<Arc<ClientConfig>>,
    #[debug(skip)]
    identity_tx: watch::Sender<Arc<Identity>>,
}

/// One generation built from an identity and checked, not yet published.
#[derive(derive_more::Debug)]
pub struct Prepared {
    identity: Arc<Identity>,
    #[debug(skip)]
    server: Arc<ServerConfig>,
    #[debug(skip)]
    client: Arc<ClientConfig>,
}

impl Prepared {
    /// The identity the configs present.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
}

impl MeshConfigs {
    /// The first generation, for `identity`.
    pub fn new(identity: &Identity, bundle: BundleHandle, options: MeshOptions) -> Result<Self> {
        let first = build(identity, &bundle, &options)?;
        Ok(MeshConfigs {
            bundle,
            options,
            server_tx: watch::channel(first.server).0,
            client_tx: watch::channel(first.client).0,
            identity_tx: watch::channel(first.identity).0,
        })
    }

    /// Builds both configs for `identity` (the bundle and options of this workload) without
    /// publishing them.
    pub fn prepare(&self, identity: &Identity) -> Result<Prepared> {
        build(identity, &self.bundle, &self.options)
    }

    /// Publishes a prepared generation: every handshake that starts from now on uses it.
    pub fn publish_prepared(&self, prepared: Prepared) {
        self.server_tx.send_replace(prepared.server);
        self.client_tx.send_replace(prepared.client);
        self.identity_tx.send_replace(prepared.identity);
    }

    /// Builds both configs for `identity`, then publishes them. If either cannot be built
    /// nothing is published and the current generation stays.
    pub fn publish(&self, identity: &Identity) -> Result<()> {
        let prepared = self.prepare(identity)?;
        self.publish_prepared(prepared);
        Ok(())
    }

    /// The identity of the newest generation (its SPIFFE ID, expiry, chain).
    pub fn identity(&self) -> Arc<Identity> {
        Arc::clone(&self.identity_tx.borrow())
    }

    /// New `ServerConfig`s, one per installed identity.
    pub fn server_configs(&self) -> watch::Receiver<Arc<ServerConfig>> {
        self.server_tx.subscribe()
    }

    /// New `ClientConfig`s, one per installed identity.
    pub fn client_configs(&self) -> watch::Receiver<Arc<ClientConfig>> {
        self.client_tx.subscribe()
    }

    /// An acceptor that uses the newest server config for each handshake.
    pub fn acceptor(&self) -> LatestAcceptor {
        LatestAcceptor::new(self.server_configs())
    }

    /// A connector that uses the newest client config for each handshake.
    pub fn connector(&self) -> LatestConnector {
        LatestConnector::new(self.client_configs())
    }

    /// The bundle every generation verifies peers against.
    pub fn bundle(&self) -> &BundleHandle {
        &self.bundle
    }
}

fn build(identity: &Identity, bundle: &BundleHandle, options: &MeshOptions) -> Result<Prepared> {
    Ok(Prepared {
        server: mesh_server_config(identity, bundle, options)?,
        client: mesh_client_config(identity, bundle, options)?,
        identity: Arc::new(identity.clone()),
    })
}

/// Whatever config is newest on a watch channel: [`LatestAcceptor`] (server configs) and
/// [`LatestConnector`] (client configs) run each handshake with it.
#[derive(Debug, Clone)]
pub struct Latest<C> {
    configs: watch::Receiver<Arc<C>>,
}

/// Accepts TLS with whatever server config is newest on a watch channel.
pub type LatestAcceptor = Latest<ServerConfig>;

/// Connects over TLS with whatever client config is newest on a watch channel.
pub type LatestConnector = Latest<ClientConfig>;

impl<C> Latest<C> {
    /// Follows `configs`.
    pub fn new(configs: watch::Receiver<Arc<C>>) -> Self {
        Latest { configs }
    }

    /// The config the next handshake uses.
    pub fn current(&self) -> Arc<C> {
        Arc::clone(&self.configs.borrow())
    }
}

impl Latest<ServerConfig> {
    /// Runs the server handshake on `stream` with the newest config.
    pub async fn accept<IO>(
        &self,
        stream: IO,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        tokio_rustls::TlsAcceptor::from(self.current())
            .accept(stream)
            .await
    }
}

impl Latest<ClientConfig> {
    /// Runs the client handshake on `stream` with the newest config. `name` is what the peer
    /// is checked against when its certificate names hosts and the verifier checks them;
    /// mesh peers are authenticated by SPIFFE ID.
    pub async fn connect<IO>(
        &self,
        name: ServerName<'static>,
        stream: IO,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        tokio_rustls::TlsConnector::from(self.current())
            .connect(name, stream)
            .await
    }
}
