//! Email over SMTP (lettre on tokio with rustls and ring): STARTTLS on the submission port,
//! implicit TLS (SMTPS), or plain to a local sink. One connection per message; plain text in
//! UTF-8, which lettre writes as MIME (the subject as an RFC 2047 encoded word, a Japanese body
//! in base64), with one-click unsubscribe headers (RFC 8058).

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::{Channel, ChannelError, Outgoing, SendFuture};

/// Default for `mail.timeout_seconds`.
pub const MAIL_TIMEOUT_SECONDS_DEFAULT: u64 = 30;

/// How the connection to the SMTP server is protected (`mail.security`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// STARTTLS, required (the submission port, 587 by default).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, 465 by default).
    Tls,
    /// No TLS (25 by default): only for a relay on the same host or a test sink; refused with
    /// credentials.
    Plain,
}

/// The SMTP server customers' emails leave through (`[mail]`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MailSection {
    /// The server's host name (checked against its certificate with TLS).
    pub host: String,
    /// Default by `security`: 587, 465 or 25.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `plain`.
    #[serde(default)]
    pub security: Security,
    /// SMTP login; `password` comes with it. Prefer `MODORI_COORD_MAIL__PASSWORD` in the
    /// environment to writing the password here.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The sender, e.g. `Modori 返品受付 <returns@example.jp>`.
    pub from: String,
    /// Longest one message may take to hand over, connection included. Default 30.
    #[serde(default = "timeout_default")]
    pub timeout_seconds: u64,
    /// A CA certificate (PEM) trusted besides the public roots, for a relay whose certificate
    /// a private CA signed. Relative to the config file's folder.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
}

fn timeout_default() -> u64 {
    MAIL_TIMEOUT_SECONDS_DEFAULT
}

impl MailSection {
    /// The first key that cannot work, and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.host.is_empty() || self.host.contains(['/', ' ', '@']) {
            return Err(("mail.host", "a host name or address".into()));
        }
        self.from
            .parse::<Mailbox>()
            .map_err(|e| ("mail.from", format!("not an address: {e}")))?;
        if self.username.is_some() != self.password.is_some() {
            return Err((
                "mail.password",
                "username and password come together".into(),
            ));
        }
        if self.security == Security::Plain && self.username.is_some() {
            return Err((
                "mail.security",
                "credentials are never sent without TLS: use starttls or tls".into(),
            ));
        }
        if self.timeout_seconds == 0 {
            return Err(("mail.timeout_seconds", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// `List-Unsubscribe: <url>`.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.trim_matches(['<', '>']).to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`: a mail client may unsubscribe with
/// one POST to the URL, without opening a page.
#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

/// The SMTP channel.
pub struct Mail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mail {
    pub fn new(section: &MailSection) -> Result<Self, ChannelError> {
        let from: Mailbox = section
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| {
                ChannelError::Address(section.from.clone(), e.to_string())
            })?;
        let smtp = |e: lettre::transport::smtp::Error| ChannelError::Smtp(e.to_string());
        let tls = || -> Result<TlsParameters, ChannelError> {
            let mut params = TlsParameters::builder(section.host.clone());
            if let Some(path) = &section.ca_cert {
                let pem = std::fs::read(path).map_err(|e| {
                    ChannelError::Build(format!("mail.ca_cert {}: {e}", path.display()))
                })?;
                params = params.add_root_certificate(Certificate::from_pem(&pem).map_err(smtp)?);
            }
            params.build_rustls().map_err(smtp)
        };
        let (port, tls) = match section.security {
            Security::Starttls => (587, Tls::Required(tls()?)),
            Security::Tls => (465, Tls::Wrapper(tls()?)),
            Security::Plain => (25, Tls::None),
        };
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&section.host)
            .port(port)
            .tls(tls);
        let mut builder = builder.timeout(Some(Duration::from_secs(section.timeout_seconds)));
        if let Some(port) = section.port {
            builder = builder.port(port);
        }
        if let (Some(user), Some(password)) = (&section.username, &section.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// The message as it goes on the wire.
    pub fn message(&self, m: &Outgoing) -> Result<Message, ChannelError> {
        let to: Mailbox = m.to.parse().map_err(|e: lettre::address::AddressError| {
            ChannelError::Address(m.to.clone(), e.to_string())
        })?;
        let domain = self.from.email.domain().to_owned();
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(format!("<modori-notice-{}@{domain}>", m.id)))
            .header(ContentType::TEXT_PLAIN)
            .header(ListUnsubscribe(m.unsubscribe_url.clone()))
            .header(ListUnsubscribePost)
            .body(m.text.clone())
            .map_err(|e| ChannelError::Build(e.to_string()))
    }
}

impl Mail {
    /// A mail to ops, not a customer: no unsubscribe headers (nobody opts out of alerts by
    /// a mail client's button; `[alerts] email_to` is the list). `tag` names the message
    /// (`alert-<id>`), so a resend of the same one carries the same Message-ID.
    pub fn ops_message(
        &self,
        tag: &str,
        to: &str,
        subject: &str,
        text: &str,
    ) -> Result<Message, ChannelError> {
        let to: Mailbox = to.parse().map_err(|e: lettre::address::AddressError| {
            ChannelError::Address(to.to_owned(), e.to_string())
        })?;
        let domain = self.from.email.domain().to_owned();
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<modori-{tag}@{domain}>")))
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_owned())
            .map_err(|e| ChannelError::Build(e.to_string()))
    }

    /// Sends a message made by [`Mail::ops_message`] over the same transport as customers'.
    pub async fn send_message(&self, message: Message) -> Result<(), ChannelError> {
        self.transport
            .send(message)
            .await
            .map_err(|e| ChannelError::Smtp(e.to_string()))?;
        Ok(())
    }
}

impl Channel for Mail {
    fn name(&self) -> &'static str {
        "email"
    }

    fn send<'a>(&'a self, m: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(async move {
            let message = self.message(m)?;
            self.transport
                .send(message)
                .await
                .map_err(|e| ChannelError::Smtp(e.to_string()))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section() -> MailSection {
        MailSection {
            host: "127.0.0.1".into(),
            port: Some(2525),
            security: Security::Plain,
            username: None,
            password: None,
            from: "ブランドA <returns@example.jp>".into(),
            timeout_seconds: 5,
            ca_cert: None,
        }
    }

    #[test]
    fn japanese_text_is_written_as_mime_with_the_unsubscribe_headers() {
        let mail = Mail::new(&section()).unwrap();
        let m = Outgoing {
            id: 7,
            to: "hanako@example.jp".into(),
            subject: "【ブランドA】返品商品が倉庫に到着しました".into(),
            text: "返品の商品が倉庫に到着しました。\nhttps://r.example.jp/r/brand-a/s/abc".into(),
            unsubscribe_url: "https://r.example.jp/r/brand-a/u/abc".into(),
        };
        let wire = String::from_utf8(mail.message(&m).unwrap().formatted()).unwrap();
        assert!(wire.is_ascii(), "8-bit text on the wire:\n{wire}");
        assert!(wire.contains("Subject: =?utf-8?b?"), "{wire}");
        assert!(wire.contains("Content-Transfer-Encoding: base64"), "{wire}");
        assert!(wire.contains("charset=utf-8"), "{wire}");
        assert!(wire.contains("List-Unsubscribe: <https://r.example.jp/r/brand-a/u/abc>"));
        assert!(wire.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(
            wire.contains("Message-ID: <modori-notice-7@example.jp>"),
            "{wire}"
        );
        let bad = Outgoing {
            to: "not an address".into(),
            ..m
        };
        assert!(mail.message(&bad).unwrap_err().is_permanent());
    }

    #[test]
    fn the_section_is_checked() {
        assert!(section().check().is_ok());
        let creds_in_clear = MailSection {
            username: Some("u".into()),
            password: Some("p".into()),
            ..section()
        };
        assert_eq!(creds_in_clear.check().unwrap_err().0, "mail.security");
        let no_password = MailSection {
            username: Some("u".into()),
            security: Security::Starttls,
            ..section()
        };
        assert_eq!(no_password.check().unwrap_err().0, "mail.password");
        let bad_from = MailSection {
            from: "nobody".into(),
            ..section()
        };
        assert_eq!(bad_from.check().unwrap_err().0, "mail.from");
        let missing_ca = MailSection {
            security: Security::Starttls,
            ca_cert: Some("/nonexistent/ca.pem".into()),
            ..section()
        };
        assert!(matches!(
            Mail::new(&missing_ca),
            Err(ChannelError::Build(e)) if e.contains("mail.ca_cert")
        ));
    }
}
