//! Who may write to control: `POST /v1/stats` and `/v1/poke` steer the autoscaler (a forged report scales
//! a revision out or in, a forged poke wakes it), so they accept only gateways, which prove themselves with
//! a token shared through a Secret (`--token-file` on both commands) and sent as `Authorization: Bearer`.
//! The comparison takes the same time whatever the presented token is, short or long, right up to its last
//! byte, so response times tell an attacker nothing about how much of a guess was right or how long the
//! real token is. Everything a request is refused for is said in the 401's JSON body, never the token.

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// The token gateways must present. Its `Debug` never shows it: options are logged.
#[derive(Clone)]
pub struct GatewayToken(Box<[u8]>);

impl std::fmt::Debug for GatewayToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayToken(<redacted>)")
    }
}

/// Why a request was refused; the 401's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    NotBearer,
    Wrong,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "an Authorization: Bearer header with the gateway token is required",
            Refusal::NotBearer => "the Authorization header is not a Bearer token",
            Refusal::Wrong => "the bearer token is not the gateway token",
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3): a bad token says so, a missing one only names the
    /// scheme.
    pub fn challenge(self) -> &'static str {
        match self {
            Refusal::Wrong => "Bearer error=\"invalid_token\"",
            Refusal::Missing | Refusal::NotBearer => "Bearer",
        }
    }
}

impl GatewayToken {
    /// `None` for an empty token: an empty secret would let anyone in who sends an empty one.
    pub fn new(token: &str) -> Option<Self> {
        (!token.is_empty()).then(|| GatewayToken(token.as_bytes().into()))
    }

    /// Whether `headers` carry this token as `Authorization: Bearer <token>`. The scheme is matched
    /// without regard to case (RFC 9110 §11.1); the token exactly, in constant time.
    pub fn admits(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let value = values.next().ok_or(Refusal::Missing)?;
        // Two Authorization headers are not one credential; which one a proxy would pick is anyone's guess.
        if values.next().is_some() {
            return Err(Refusal::NotBearer);
        }
        let value = value.as_bytes();
        let scheme = b"bearer ";
        if value.len() < scheme.len() || !value[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Err(Refusal::NotBearer);
        }
        let presented = value[scheme.len()..].trim_ascii();
        if self.matches(presented) { Ok(()) } else { Err(Refusal::Wrong) }
    }

    /// Constant-time equality. The loop runs over the presented bytes, whose length the sender already
    /// knows, and never stops early; the real token is read cyclically so a presented token of another
    /// length costs the same as one of the right length and reveals nothing of the real length. The length
    /// difference is folded into the same accumulator, so a prefix of the token is no match.
    fn matches(&self, presented: &[u8]) -> bool {
        let expected = &self.0;
        let mut difference = presented.len() ^ expected.len();
        for (i, byte) in presented.iter().enumerate() {
            // `black_box` keeps the optimiser from turning the fold into an early exit.
            difference |= usize::from(std::hint::black_box(byte ^ expected[i % expected.len()]));
        }
        std::hint::black_box(difference) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(value).expect("a header value"));
        }
        map
    }

    #[test]
    fn only_the_exact_token_is_admitted() {
        let token = GatewayToken::new("s3cret-token").expect("a token");
        let cases: &[(&[&str], Result<(), Refusal>)] = &[
            (&["Bearer s3cret-token"], Ok(())),
            (&["bearer s3cret-token"], Ok(())),
            (&["BEARER   s3cret-token "], Ok(())),
            (&[], Err(Refusal::Missing)),
            (&["Basic czNjcmV0LXRva2Vu"], Err(Refusal::NotBearer)),
            (&["Bearer"], Err(Refusal::NotBearer)),
            (&["Bearer s3cret-token", "Bearer s3cret-token"], Err(Refusal::NotBearer)),
            (&["Bearer "], Err(Refusal::Wrong)),
            (&["Bearer s3cret-tokem"], Err(Refusal::Wrong)),
            (&["Bearer s3cret-toke"], Err(Refusal::Wrong)),
            (&["Bearer s3cret-token-and-more"], Err(Refusal::Wrong)),
            // The real token repeated: equal bytes under the cyclic read, told apart by the length alone.
            (&["Bearer s3cret-tokens3cret-token"], Err(Refusal::Wrong)),
            (&["Bearer S3CRET-TOKEN"], Err(Refusal::Wrong)),
        ];
        for (values, want) in cases {
            assert_eq!(token.admits(&headers(values)), *want, "{values:?}");
        }
    }

    #[test]
    fn an_empty_token_is_no_token_and_debug_hides_it() {
        assert!(GatewayToken::new("").is_none());
        let token = GatewayToken::new("s3cret").expect("a token");
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}
