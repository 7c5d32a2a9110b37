//! Node-to-node messages over Redis pub/sub (not part of the client protocol).
//!
//! ```text
//! Deliveries = 1 || count u32 || (DeviceAddress || len u32 || DELIVER frame)*
//! Kick       = 2 || DeviceAddress
//! ```

use e2ee_encoding::{Codec, DeviceAddress, Reader};

use crate::wire::{DecodeError, Delivery, ServerFrame};

const DELIVERIES: u8 = 1;
const KICK: u8 = 2;

/// A message from one relay node to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Deliveries for devices connected to the receiving node.
    Deliveries(Vec<(DeviceAddress, Delivery)>),
    /// Close this device's connection on the receiving node: it connected elsewhere.
    Kick(DeviceAddress),
}

impl Codec for Routed {
    type Error = DecodeError;

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Routed::Deliveries(items) => {
                out.push(DELIVERIES);
                (items.len() as u32).write(out);
                for (to, delivery) in items {
                    to.write(out);
                    // The frame's length is only known once written: reserve its slot.
                    let at = out.len();
                    out.extend_from_slice(&[0; 4]);
                    delivery.write_frame(out);
                    let len = (out.len() - at - 4) as u32;
                    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
                }
            }
            Routed::Kick(device) => {
                out.push(KICK);
                device.write(out);
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            DELIVERIES => {
                let n = r.u32()? as usize;
                // A count is only a claim: grow as items actually arrive.
                let mut items = Vec::with_capacity(n.min(4096));
                for _ in 0..n {
                    let to = DeviceAddress::read(r)?;
                    let len = r.u32()? as usize;
                    match ServerFrame::from_bytes(r.take(len)?)? {
                        ServerFrame::Deliver(d) => items.push((to, d)),
                        _ => {
                            return Err(e2ee_encoding::DecodeError::InvalidField(
                                "routed frame is not DELIVER",
                            )
                            .into());
                        }
                    }
                }
                Routed::Deliveries(items)
            }
            KICK => Routed::Kick(DeviceAddress::read(r)?),
            other => return Err(DecodeError::UnknownKind(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use e2ee_encoding::check_codec;

    use super::*;

    #[test]
    fn routed_messages_round_trip_and_refuse_cuts() {
        let delivery = Delivery {
            seq: 3,
            flags: 0,
            server_ts_ms: 5,
            sender: DeviceAddress::new("a", 1).unwrap(),
            msg_id: 9,
            payload: vec![1u8, 2].into(),
        };
        let bob = DeviceAddress::new("b", 2).unwrap();
        check_codec(&Routed::Deliveries(vec![(bob.clone(), delivery.clone())]));
        check_codec(&Routed::Deliveries(vec![]));
        check_codec(&Routed::Kick(bob.clone()));
        let mut not_deliver = vec![DELIVERIES, 0, 0, 0, 1];
        bob.write(&mut not_deliver);
        let frame = ServerFrame::QueueDrained { count: 1 }.to_bytes();
        (frame.len() as u32).write(&mut not_deliver);
        not_deliver.extend_from_slice(&frame);
        assert!(Routed::from_bytes(&not_deliver).is_err());
    }
}
