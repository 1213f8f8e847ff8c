//! Extension negotiation (RFC 6455 §9.1, RFC 7692 §7.1): reading the
//! client's `Sec-WebSocket-Extensions` offers and choosing the
//! permessage-deflate parameters the server answers with.
//!
//! The server takes the first permessage-deflate offer it can honour and
//! ignores the other extensions. An offer is declined when a parameter is
//! unknown, repeated or has a bad value, and when it asks for
//! `server_max_window_bits` below 15: the compressor has only the 32 KiB
//! window (see `deflate`), and a client that needs a smaller one usually
//! sends a second offer without it. `client_max_window_bits` needs nothing
//! from the server (its decompressor reads any window), so it is accepted
//! and not echoed. A header that does not parse offers nothing: the
//! connection goes on without compression.

use super::deflate::{Deflater, Inflater};

/// One offered extension: its name and parameters, values unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub name: String,
    pub params: Vec<(String, Option<String>)>,
}

/// The permessage-deflate parameters agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deflate {
    /// The server starts every message it sends with a fresh window.
    pub server_no_context_takeover: bool,
    /// The client does the same for its messages.
    pub client_no_context_takeover: bool,
}

impl Deflate {
    /// The `Sec-WebSocket-Extensions` value of the 101 response.
    pub fn response_value(&self) -> String {
        let mut v = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            v.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            v.push_str("; client_no_context_takeover");
        }
        v
    }

    /// The codec for these parameters: the server's compressor and its
    /// decompressor for the client's messages.
    pub fn codec(&self) -> (Deflater, Inflater) {
        (Deflater::new(self.server_no_context_takeover), Inflater::new(self.client_no_context_takeover))
    }
}

/// Parse the `Sec-WebSocket-Extensions` values of a request (each a
/// comma-separated list); `None` when one does not follow the grammar.
pub fn parse_offers<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<Offer>> {
    let mut offers = Vec::new();
    for value in values {
        let mut p = Cursor { s: value, at: 0 };
        loop {
            p.skip_ows();
            if p.eat(b',') {
                continue; // empty list elements are allowed (RFC 9110 §5.6.1)
            }
            if p.done() {
                break;
            }
            let name = p.token()?;
            let mut params = Vec::new();
            loop {
                p.skip_ows();
                if !p.eat(b';') {
                    break;
                }
                p.skip_ows();
                let key = p.token()?;
                p.skip_ows();
                let value = if p.eat(b'=') {
                    p.skip_ows();
                    Some(if p.peek() == Some(b'"') { p.quoted()? } else { p.token()? })
                } else {
                    None
                };
                params.push((key, value));
            }
            offers.push(Offer { name, params });
            p.skip_ows();
            if !p.done() && !p.eat(b',') {
                return None;
            }
        }
    }
    Some(offers)
}

/// The permessage-deflate parameters for the first offer the server can
/// honour, `None` when there is none.
pub fn negotiate_deflate(offers: &[Offer]) -> Option<Deflate> {
    offers.iter().filter(|o| o.name.eq_ignore_ascii_case("permessage-deflate")).find_map(accept)
}

fn accept(offer: &Offer) -> Option<Deflate> {
    let mut agreed = Deflate::default();
    for (i, (key, value)) in offer.params.iter().enumerate() {
        if offer.params[..i].iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
            return None;
        }
        match (key.to_ascii_lowercase().as_str(), value.as_deref()) {
            ("server_no_context_takeover", None) => agreed.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => agreed.client_no_context_takeover = true,
            ("server_max_window_bits", Some(v)) if window_bits(v)? == 15 => {}
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(v)) => {
                window_bits(v)?;
            }
            _ => return None,
        }
    }
    Some(agreed)
}

/// A window size parameter: 8 to 15, in decimal without a leading zero.
fn window_bits(v: &str) -> Option<u8> {
    if v.starts_with('0') || v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
}

struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }
    fn done(&self) -> bool {
        self.at >= self.s.len()
    }
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += hit as usize;
        hit
    }
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.at;
        while self.peek().is_some_and(crate::http::is_tchar) {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.s[start..self.at]).into_owned())
    }
    /// A quoted-string (RFC 9110 §5.6.4); RFC 7692 wants its content to be
    /// a token.
    fn quoted(&mut self) -> Option<String> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    break;
                }
                b'\\' => {
                    self.at += 1;
                    out.push(self.peek()?);
                    self.at += 1;
                }
                b => {
                    out.push(b);
                    self.at += 1;
                }
            }
        }
        crate::http::is_token(&out).then(|| String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers(v: &str) -> Option<Vec<Offer>> {
        parse_offers([v.as_bytes()])
    }

    fn negotiate(v: &str) -> Option<Deflate> {
        negotiate_deflate(&offers(v)?)
    }

    #[test]
    fn parses_offer_lists() {
        let o = offers("permessage-deflate; client_max_window_bits, foo;bar=\"1\" , x-webkit-deflate-frame").unwrap();
        assert_eq!(o.len(), 3);
        assert_eq!(o[0].params, vec![("client_max_window_bits".into(), None)]);
        assert_eq!(o[1].params, vec![("bar".into(), Some("1".into()))]);
        assert_eq!(o[2].name, "x-webkit-deflate-frame");
        assert_eq!(parse_offers([&b"a"[..], b"b; c=d"]).unwrap().len(), 2, "repeated headers add up");
        assert_eq!(offers(", ,a,"), Some(vec![Offer { name: "a".into(), params: vec![] }]));
        assert_eq!(offers(""), Some(vec![]));
        for bad in ["a b", "a;", "a; =1", "a; b=", "a; b=\"1", "a; b=\"1 2\"", ";a", "a; b=1 c"] {
            assert_eq!(offers(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn negotiates_deflate() {
        assert_eq!(negotiate("permessage-deflate"), Some(Deflate::default()));
        assert_eq!(negotiate("PerMessage-Deflate; client_max_window_bits"), Some(Deflate::default()));
        assert_eq!(
            negotiate("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            Some(Deflate { server_no_context_takeover: true, client_no_context_takeover: true })
        );
        assert_eq!(negotiate("permessage-deflate; server_max_window_bits=15; client_max_window_bits=\"10\""), Some(Deflate::default()));
        assert_eq!(negotiate("x-webkit-deflate-frame"), None);
        assert_eq!(negotiate("permessage-deflate; server_max_window_bits=10"), None, "no smaller window here");
        assert_eq!(
            negotiate("permessage-deflate; server_max_window_bits=10, permessage-deflate; client_no_context_takeover"),
            Some(Deflate { server_no_context_takeover: false, client_no_context_takeover: true }),
            "the next offer is taken"
        );
        for declined in [
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=010",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; unknown",
        ] {
            assert_eq!(negotiate(declined), None, "{declined:?}");
        }
    }

    #[test]
    fn response_values() {
        assert_eq!(Deflate::default().response_value(), "permessage-deflate");
        let both = Deflate { server_no_context_takeover: true, client_no_context_takeover: true };
        assert_eq!(both.response_value(), "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    }
}
