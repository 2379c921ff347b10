//! LINE: a push message through the Messaging API (`POST /v2/bot/message/push` with the
//! channel's access token as `Authorization: Bearer`, JSON `{to, messages: [{type: "text",
//! text}]}`), for customers who linked LINE. A resend carries the same `X-Line-Retry-Key`, so
//! LINE delivers a message retried after a lost answer only once.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Channel, Outgoing, SendFuture};
use crate::webhooks::post_json;

/// LINE's API, unless `line.api_base_url` says otherwise (a test's stub).
pub const LINE_API_BASE_URL_DEFAULT: &str = "https://api.line.me";
/// Where a push message is posted, under the base URL.
pub const PUSH_PATH: &str = "/v2/bot/message/push";
/// Longest text message LINE takes, in characters; longer text is cut.
pub const TEXT_CHARS_MAX: usize = 5000;
/// Shortest channel access token accepted: LINE's are far longer, so a shorter one is a typo.
pub const ACCESS_TOKEN_CHARS_MIN: usize = 32;

/// The LINE official account messages are pushed from (`[line]`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LineSection {
    /// The channel's long-lived access token (prefer `MODORI_COORD_LINE__CHANNEL_ACCESS_TOKEN`
    /// in the environment).
    pub channel_access_token: String,
    /// Default `https://api.line.me`.
    #[serde(default = "base_default")]
    pub api_base_url: String,
}

fn base_default() -> String {
    LINE_API_BASE_URL_DEFAULT.to_owned()
}

impl LineSection {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let t = &self.channel_access_token;
        if t.len() < ACCESS_TOKEN_CHARS_MIN || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err((
                "line.channel_access_token",
                format!("at least {ACCESS_TOKEN_CHARS_MIN} printable characters"),
            ));
        }
        crate::webhooks::check_url(&self.push_url())
            .map_err(|e| ("line.api_base_url", e.to_string()))
    }

    fn push_url(&self) -> String {
        format!("{}{PUSH_PATH}", self.api_base_url.trim_end_matches('/'))
    }
}

/// The LINE channel.
pub struct Line {
    url: String,
    authorization: String,
}

impl Line {
    pub fn new(section: &LineSection) -> Self {
        Self {
            url: section.push_url(),
            authorization: format!("Bearer {}", section.channel_access_token),
        }
    }
}

/// The request body LINE documents for one text message to one user.
pub fn push_body(m: &Outgoing) -> Vec<u8> {
    let text: String = format!("{}\n\n{}", m.subject, m.text)
        .chars()
        .take(TEXT_CHARS_MAX)
        .collect();
    serde_json::json!({"to": m.to, "messages": [{"type": "text", "text": text}]})
        .to_string()
        .into_bytes()
}

/// A UUID (the form LINE asks for) that is the same for every sending of one message.
pub fn retry_key(m: &Outgoing) -> String {
    let mut d = Sha256::digest(format!("{}\n{}\n{}", m.id, m.to, m.subject).as_bytes());
    d[6] = (d[6] & 0x0f) | 0x40;
    d[8] = (d[8] & 0x3f) | 0x80;
    let h: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Channel for Line {
    fn name(&self) -> &'static str {
        "line"
    }

    fn send<'a>(&'a self, m: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(async move {
            let headers = [
                ("authorization", self.authorization.clone()),
                ("x-line-retry-key", retry_key(m)),
            ];
            post_json(&self.url, &headers, push_body(m)).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_key_is_a_uuid_stable_per_message() {
        let m = Outgoing {
            id: 3,
            to: "U0123456789abcdef0123456789abcdef".into(),
            subject: "s".into(),
            text: "t".into(),
            unsubscribe_url: "u".into(),
        };
        let k = retry_key(&m);
        assert_eq!(k.len(), 36);
        assert_eq!(&k[14..15], "4");
        assert_eq!(k, retry_key(&m.clone()));
        assert_ne!(k, retry_key(&Outgoing { id: 4, ..m.clone() }));
        let body: serde_json::Value = serde_json::from_slice(&push_body(&m)).unwrap();
        assert_eq!(body["messages"][0]["text"], "s\n\nt");
    }
}
