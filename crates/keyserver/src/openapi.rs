//! The OpenAPI 3.1 document served at `GET /openapi.json` (hand-written; a test checks that
//! it parses and names every route the router serves).

pub(crate) const DOCUMENT: &str = include_str!("openapi.json");
