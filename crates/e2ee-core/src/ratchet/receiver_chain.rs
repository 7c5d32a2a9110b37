//! A receiving chain: the peer's ratchet public key and the chain key it led to.

use super::ChainKey;
use crate::dh::DhPublicKey;

#[derive(Clone)]
pub(crate) struct ReceiverChain {
    pub(crate) ratchet_key: DhPublicKey,
    pub(crate) chain: ChainKey,
}
