//! Entry points for the fuzz targets into decoders that are not public API (the group wire
//! of `device::group_wire`, a welcome's parts, and the log's conversation key). Not for
//! apps.

use e2ee_core::Codec;

use crate::device::{ConversationKey, GroupChat, GroupEnvelope, WelcomePart};

/// Decodes `data` as each of the client's private group formats; whatever decodes must
/// encode back to exactly `data` (canonical). Panics otherwise: that is the finding.
pub fn check_group_wire(data: &[u8]) {
    if let Ok(envelope) = GroupEnvelope::from_bytes(data) {
        assert_eq!(envelope.to_bytes(), data);
    }
    if let Ok(chat) = GroupChat::from_bytes(data) {
        assert_eq!(chat.to_bytes(), data);
    }
    if let Ok(key) = ConversationKey::from_bytes(data) {
        assert_eq!(key.to_bytes(), data);
    }
    if let Ok(part) = WelcomePart::parse(data) {
        assert!(part.index < part.count && !part.chunk.is_empty());
        assert_eq!(part.chunk.len() + 12, data.len());
        let _ = part.transfer;
    }
}
