//! Chain reads of the node: [`vouch_contracts::view`], with errors as [`NodeError`].

use std::sync::Arc;

use alloy::providers::DynProvider;
use alloy_primitives::{Address, U256};
use vouch_contracts::{AddressBook, view};
use vouch_crypto::PublicKey;
use vouch_primitives::{CallId, ChainBinding, ServiceId};

pub use vouch_contracts::view::{CALL_OPEN, CALL_SETTLED, JobTerms, OnChainCall, SERVICE_ACTIVE, ServiceInfo};

use crate::NodeError;

impl From<view::ViewError> for NodeError {
    fn from(e: view::ViewError) -> Self {
        Self::Chain { what: e.what, reason: e.reason }
    }
}

/// Cached chain reads ([`view::ChainView`]).
#[derive(Clone, Debug)]
pub struct ChainView(view::ChainView);

impl ChainView {
    /// Reads through `provider` the deployment named by `book`.
    pub fn new(provider: DynProvider, book: AddressBook) -> Self {
        Self(view::ChainView::new(provider, book))
    }

    /// The provider.
    pub fn provider(&self) -> &DynProvider {
        self.0.provider()
    }

    /// The deployment.
    pub fn book(&self) -> &AddressBook {
        self.0.book()
    }

    /// What every result signature is bound to.
    pub fn binding(&self) -> ChainBinding {
        self.0.binding()
    }

    /// Service `id`, or `None` if the chain has no such service.
    pub async fn service(&self, id: ServiceId) -> Result<Option<Arc<ServiceInfo>>, NodeError> {
        Ok(self.0.service(id).await?)
    }

    /// Call `id` as stored on chain (status 0 if unknown).
    pub async fn call(&self, id: CallId) -> Result<OnChainCall, NodeError> {
        Ok(self.0.call(id).await?)
    }

    /// Whether the contract counts `bitmap` as a quorum of `service` now.
    pub async fn quorum_reached(&self, service: ServiceId, bitmap: U256) -> Result<bool, NodeError> {
        Ok(self.0.quorum_reached(service, bitmap).await?)
    }

    /// The endpoint `operator` announced (cached for 30 s).
    pub async fn endpoint_of(&self, operator: Address) -> Result<String, NodeError> {
        Ok(self.0.endpoint_of(operator).await?)
    }

    /// Drops `operator`'s cached endpoint.
    pub fn forget_endpoint(&self, operator: Address) {
        self.0.forget_endpoint(operator);
    }

    /// The registered BLS key of `operator`, if any.
    pub async fn key_of(&self, operator: Address) -> Result<Option<PublicKey>, NodeError> {
        Ok(self.0.key_of(operator).await?)
    }

    /// Latest block timestamp.
    pub async fn now(&self) -> Result<u64, NodeError> {
        Ok(self.0.now().await?)
    }
}
