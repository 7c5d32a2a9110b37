//! A minimal relay client over tokio-tungstenite, for tests and examples.
//! Apps use the SDK's client; this one only speaks the wire format.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue},
};

use e2ee_relay::wire::{ClientFrame, Codec, DecodeError, ServerFrame};

/// What went wrong on the client side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The WebSocket failed (including a refused upgrade: see [`ClientError::status`]).
    #[error("websocket: {0}")]
    Ws(#[from] Box<tungstenite::Error>),
    /// The relay sent bytes that are not a frame.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// The relay closed the connection (close code, if any).
    #[error("closed by relay (code {0:?})")]
    Closed(Option<u16>),
    /// Nothing arrived in time.
    #[error("timed out")]
    Timeout,
    /// The relay sent a text frame.
    #[error("unexpected text frame")]
    Unexpected,
}

impl ClientError {
    /// HTTP status of a refused upgrade.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Ws(e) => match e.as_ref() {
                tungstenite::Error::Http(r) => Some(r.status().as_u16()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A connected device.
#[derive(Debug)]
pub struct RelayClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl RelayClient {
    /// Connects to `ws://addr/v1/relay/ws` presenting `ticket` in the Authorization header.
    pub async fn connect(addr: &str, ticket: &str) -> Result<Self, ClientError> {
        let url = format!("ws://{addr}{}", e2ee_relay::WS_PATH);
        let mut req = url.into_client_request().map_err(Box::new)?;
        let value = HeaderValue::from_str(&format!("Bearer {ticket}"))
            .map_err(|e| Box::new(tungstenite::Error::HttpFormat(e.into())))?;
        req.headers_mut().insert("authorization", value);
        Self::connect_request(req).await
    }

    /// Connects with the ticket in the `ticket` query parameter instead (or none at all).
    pub async fn connect_query(addr: &str, ticket: Option<&str>) -> Result<Self, ClientError> {
        let url = match ticket {
            Some(t) => format!("ws://{addr}{}?ticket={t}", e2ee_relay::WS_PATH),
            None => format!("ws://{addr}{}", e2ee_relay::WS_PATH),
        };
        let req = url.into_client_request().map_err(Box::new)?;
        Self::connect_request(req).await
    }

    async fn connect_request(
        req: tungstenite::handshake::client::Request,
    ) -> Result<Self, ClientError> {
        // TCP_NODELAY, as real clients set it (Nagle would hold small frames back).
        let connect = tokio_tungstenite::connect_async_with_config(req, None, true);
        let (ws, _) = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| ClientError::Timeout)?
            .map_err(Box::new)?;
        Ok(Self { ws })
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        self.send_raw(frame.to_bytes()).await
    }

    /// Sends arbitrary bytes as one binary message (tests of malformed input).
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .map_err(|e| ClientError::Ws(Box::new(e)))
    }

    /// Sends a text message (the relay refuses them).
    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .map_err(|e| ClientError::Ws(Box::new(e)))
    }

    /// Waits up to `timeout` for the next frame.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<ServerFrame, ClientError> {
        loop {
            let next = tokio::time::timeout(timeout, self.ws.next())
                .await
                .map_err(|_| ClientError::Timeout)?;
            match next {
                Some(Ok(Message::Binary(b))) => return Ok(ServerFrame::from_bytes(&b)?),
                Some(Ok(Message::Close(c))) => {
                    return Err(ClientError::Closed(c.map(|c| u16::from(c.code))));
                }
                Some(Ok(Message::Text(_))) => return Err(ClientError::Unexpected),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(ClientError::Ws(Box::new(e))),
                None => return Err(ClientError::Closed(None)),
            }
        }
    }

    /// Waits up to 10 s for the next frame.
    pub async fn recv(&mut self) -> Result<ServerFrame, ClientError> {
        self.recv_timeout(Duration::from_secs(10)).await
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}
