//! [`SmtpSink`]: a throwaway SMTP server for tests.
//!
//! End-to-end tests send mail the way production does, through a real SMTP connection, and read
//! it back here: the sink listens on `127.0.0.1` on a free port, accepts every message (no
//! authentication, no TLS, no relaying), keeps it in memory and decodes it with `mail-parser`,
//! so quoted-printable and base64 parts come back as the text that was sent.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use rampart::testing::smtp_sink::SmtpSink;
//!
//! let sink = SmtpSink::start().await?;
//! // … point the SMTP mailer at 127.0.0.1:sink.port() and register ann@example.com …
//! let mail = sink.wait_for("ann@example.com", Duration::from_secs(10)).await;
//! assert_eq!(mail.map(|m| m.subject).as_deref(), Some("Welcome"));
//! # Ok(()) }
//! ```
//!
//! It speaks just enough ESMTP for mail clients such as lettre: the greeting, `EHLO`/`HELO`,
//! `MAIL FROM`, `RCPT TO`, `DATA` (with dot-unstuffing), `RSET`, `NOOP` and `QUIT`, several
//! messages per connection and any number of connections at once. It stops when dropped.
//!
//! [`SmtpSink::wait_for`] waits on a notification, not a polling loop; it relies on tokio's real
//! clock, so do not use it in a test that pauses time.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mail_parser::{MessageParser, PartType};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// The name the sink gives itself in its replies.
const HOST: &str = "rampart-smtp-sink";
/// Longest command line accepted (RFC 5321 asks for 512; be generous).
const MAX_LINE: usize = 64 * 1024;
/// Largest message accepted.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;

/// One message received by the [`SmtpSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// Envelope sender (`MAIL FROM`), without angle brackets; empty for the null sender.
    pub from: String,
    /// Envelope recipients (`RCPT TO`), without angle brackets, in order.
    pub to: Vec<String>,
    /// The message as transmitted (headers and encoded body, CRLF line ends, dots unstuffed).
    pub raw: String,
    /// Decoded `Subject` header; empty when missing.
    pub subject: String,
    /// Decoded first `text/plain` part; empty when missing.
    pub text: String,
    /// Decoded first `text/html` part; empty when missing.
    pub html: String,
}

impl ReceivedMail {
    /// Decodes the message `raw` received from `from` for `to`.
    fn parse(from: String, to: Vec<String>, raw: String) -> Self {
        let (subject, text, html) = match MessageParser::default().parse(raw.as_bytes()) {
            Some(message) => {
                let text = match message.text_part(0).map(|part| &part.body) {
                    Some(PartType::Text(text)) => text.to_string(),
                    _ => String::new(),
                };
                let html = match message.html_part(0).map(|part| &part.body) {
                    Some(PartType::Html(html)) => html.to_string(),
                    _ => String::new(),
                };
                (message.subject().unwrap_or_default().to_owned(), text, html)
            }
            None => Default::default(),
        };
        Self {
            from,
            to,
            raw,
            subject,
            text,
            html,
        }
    }

    /// Whether `addr` is one of the envelope recipients (compared without case).
    fn is_for(&self, addr: &str) -> bool {
        self.to.iter().any(|to| to.eq_ignore_ascii_case(addr))
    }
}

/// What the server task and the test share.
#[derive(Debug, Default)]
struct Shared {
    /// Every message received, oldest first, with whether `wait_for` has returned it.
    messages: Mutex<Vec<(ReceivedMail, bool)>>,
    /// Woken whenever a message arrives.
    arrived: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<(ReceivedMail, bool)>> {
        self.messages.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn store(&self, mail: ReceivedMail) {
        self.lock().push((mail, false));
        self.arrived.notify_waiters();
    }

    /// The oldest message for `addr` not yet taken, marked as taken.
    fn take_next(&self, addr: &str) -> Option<ReceivedMail> {
        let mut messages = self.lock();
        let (mail, taken) = messages
            .iter_mut()
            .find(|(mail, taken)| !*taken && mail.is_for(addr))?;
        *taken = true;
        Some(mail.clone())
    }
}

/// A local SMTP server that keeps every message it receives, for tests. See the
/// [module documentation](self).
#[derive(Debug)]
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// Starts a sink on `127.0.0.1` on a free port. Must be called within a tokio runtime.
    pub async fn start() -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(accept(listener, Arc::clone(&shared)));
        Ok(Self { addr, shared, task })
    }

    /// The port the sink listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address the sink listens on.
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared
            .lock()
            .iter()
            .map(|(mail, _)| mail.clone())
            .collect()
    }

    /// Forgets every message received so far.
    pub fn clear(&self) {
        self.shared.lock().clear();
    }

    /// Waits up to `timeout` for the next message to `to` (an envelope recipient, compared
    /// without case; `<…>` brackets are ignored) and returns it, or `None` on timeout.
    ///
    /// Each message is returned once: successive calls return successive messages to the same
    /// address, oldest first, whether they had already arrived or not. [`SmtpSink::messages`]
    /// still lists them all.
    pub async fn wait_for(&self, to: &str, timeout: Duration) -> Option<ReceivedMail> {
        let to = to.trim().trim_start_matches('<').trim_end_matches('>');
        let wait = async {
            loop {
                // Register for the wake-up before looking, so an arrival in between is not lost.
                let mut arrived = std::pin::pin!(self.shared.arrived.notified());
                arrived.as_mut().enable();
                if let Some(mail) = self.shared.take_next(to) {
                    return mail;
                }
                arrived.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.ok()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every open connection.
        self.task.abort();
    }
}

/// Accepts connections until aborted, serving each on its own task.
async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // A broken connection only loses its unfinished message.
                    connections.spawn(serve(stream, Arc::clone(&shared)));
                }
                // Out of file descriptors or similar: give the system a moment.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The envelope of the message being received on one connection.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
}

/// Serves one SMTP connection until `QUIT` or the client goes away.
async fn serve(stream: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(format!("220 {HOST} ESMTP ready\r\n").as_bytes())
        .await?;
    let mut envelope = Envelope::default();
    let mut line = Vec::new();
    loop {
        if !read_line(&mut reader, &mut line).await? {
            return Ok(());
        }
        if !line.ends_with(b"\n") {
            write.write_all(b"500 5.5.2 Line too long\r\n").await?;
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line);
        let command = command.trim_end_matches(['\r', '\n']);
        let (verb, arg) = command.split_once(' ').unwrap_or((command, ""));
        let reply = match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                envelope = Envelope::default();
                format!("250-{HOST}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE {MAX_MESSAGE}\r\n")
            }
            "HELO" => {
                envelope = Envelope::default();
                format!("250 {HOST}\r\n")
            }
            "MAIL" => match path_after(arg, "FROM:") {
                Some(from) => {
                    envelope = Envelope {
                        from: Some(from),
                        to: Vec::new(),
                    };
                    "250 2.1.0 OK\r\n".to_owned()
                }
                None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".to_owned(),
            },
            "RCPT" => match (&envelope.from, path_after(arg, "TO:")) {
                (None, _) => "503 5.5.1 MAIL first\r\n".to_owned(),
                (Some(_), Some(to)) if !to.is_empty() => {
                    envelope.to.push(to);
                    "250 2.1.5 OK\r\n".to_owned()
                }
                (Some(_), _) => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".to_owned(),
            },
            "DATA" if envelope.to.is_empty() => "503 5.5.1 RCPT first\r\n".to_owned(),
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let Some(raw) = read_data(&mut reader, &mut line).await? else {
                    write.write_all(b"552 5.3.4 Message too big\r\n").await?;
                    return Ok(());
                };
                let Envelope { from, to } = std::mem::take(&mut envelope);
                shared.store(ReceivedMail::parse(from.unwrap_or_default(), to, raw));
                "250 2.0.0 OK queued\r\n".to_owned()
            }
            "RSET" => {
                envelope = Envelope::default();
                "250 2.0.0 OK\r\n".to_owned()
            }
            "NOOP" => "250 2.0.0 OK\r\n".to_owned(),
            "QUIT" => {
                write
                    .write_all(format!("221 2.0.0 {HOST} closing\r\n").as_bytes())
                    .await?;
                return write.shutdown().await;
            }
            _ => "502 5.5.2 Command not recognized\r\n".to_owned(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// Reads one line (at most [`MAX_LINE`] bytes) into `line`; `false` at end of stream.
async fn read_line(
    reader: &mut BufReader<impl tokio::io::AsyncRead + Unpin>,
    line: &mut Vec<u8>,
) -> io::Result<bool> {
    line.clear();
    let read = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', line)
        .await?;
    Ok(read > 0)
}

/// Reads the message after `DATA` up to the lone `.` line, undoing dot-stuffing. `None` when it
/// exceeds [`MAX_MESSAGE`].
async fn read_data(
    reader: &mut BufReader<impl tokio::io::AsyncRead + Unpin>,
    line: &mut Vec<u8>,
) -> io::Result<Option<String>> {
    let mut data = Vec::new();
    loop {
        if !read_line(reader, line).await? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(Some(String::from_utf8_lossy(&data).into_owned()));
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(line);
        if data.len() + unstuffed.len() > MAX_MESSAGE {
            return Ok(None);
        }
        data.extend_from_slice(unstuffed);
    }
}

/// The address in `FROM:<addr> PARAMS` / `TO:<addr> PARAMS` (keyword compared without case),
/// without brackets; `None` when the keyword is missing.
fn path_after(arg: &str, keyword: &str) -> Option<String> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let path = match rest.strip_prefix('<') {
        Some(inner) => inner.split_once('>')?.0,
        None => rest.split_whitespace().next().unwrap_or_default(),
    };
    Some(path.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal SMTP client speaking line by line, for driving the sink by hand.
    struct Client {
        reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
        write: tokio::net::tcp::OwnedWriteHalf,
    }

    impl Client {
        async fn connect(sink: &SmtpSink) -> Self {
            let stream = TcpStream::connect(sink.address()).await.unwrap();
            let (read, write) = stream.into_split();
            let mut client = Self {
                reader: BufReader::new(read),
                write,
            };
            assert!(client.reply().await.starts_with("220 "));
            client
        }

        /// Reads one (possibly multi-line) reply.
        async fn reply(&mut self) -> String {
            let mut all = String::new();
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line).await.unwrap();
                all.push_str(&line);
                if line.len() < 4 || line.as_bytes()[3] != b'-' {
                    return all;
                }
            }
        }

        async fn send(&mut self, text: &str) -> String {
            self.write.write_all(text.as_bytes()).await.unwrap();
            self.reply().await
        }
    }

    const MESSAGE: &str = "From: a@example.com\r\nTo: b@example.com\r\nSubject: =?utf-8?q?H=C3=A9llo?=\r\n\
        MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\r\n\
        caf=C3=A9 https://example.com/confirm/abc?x=3Dy&a=\r\n=3Db\r\n..dot line\r\n";

    #[tokio::test]
    async fn a_conversation_stores_the_message_decoded_and_unstuffed() {
        let sink = SmtpSink::start().await.unwrap();
        let mut c = Client::connect(&sink).await;
        let ehlo = c.send("EHLO client.test\r\n").await;
        assert!(
            ehlo.starts_with("250-") && ehlo.contains("8BITMIME"),
            "{ehlo}"
        );
        assert!(
            c.send("MAIL FROM:<a@example.com> BODY=8BITMIME\r\n")
                .await
                .starts_with("250")
        );
        assert!(
            c.send("RCPT TO:<b@example.com>\r\n")
                .await
                .starts_with("250")
        );
        assert!(
            c.send("rcpt to: <C@Example.com>\r\n")
                .await
                .starts_with("250")
        );
        assert!(c.send("DATA\r\n").await.starts_with("354"));
        assert!(c.send(&format!("{MESSAGE}.\r\n")).await.starts_with("250"));
        assert!(c.send("QUIT\r\n").await.starts_with("221"));

        let mail = sink
            .wait_for("<c@example.com>", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(mail.from, "a@example.com");
        assert_eq!(mail.to, ["b@example.com", "C@Example.com"]);
        assert!(mail.raw.ends_with("\r\n.dot line\r\n"));
        assert_eq!(mail.subject, "Héllo");
        assert_eq!(
            mail.text,
            "café https://example.com/confirm/abc?x=y&a=b\r\n.dot line\r\n"
        );
        assert_eq!(mail.html, "");
    }

    #[tokio::test]
    async fn commands_out_of_order_are_refused_and_rset_forgets_the_envelope() {
        let sink = SmtpSink::start().await.unwrap();
        let mut c = Client::connect(&sink).await;
        assert!(c.send("HELO client.test\r\n").await.starts_with("250 "));
        assert!(
            c.send("RCPT TO:<b@example.com>\r\n")
                .await
                .starts_with("503")
        );
        assert!(c.send("DATA\r\n").await.starts_with("503"));
        assert!(
            c.send("MAIL FROM:<a@example.com>\r\n")
                .await
                .starts_with("250")
        );
        assert!(
            c.send("RCPT TO:<b@example.com>\r\n")
                .await
                .starts_with("250")
        );
        assert!(c.send("RSET\r\n").await.starts_with("250"));
        assert!(c.send("DATA\r\n").await.starts_with("503"));
        assert!(c.send("NOOP\r\n").await.starts_with("250"));
        assert!(c.send("VRFY b\r\n").await.starts_with("502"));
        assert!(
            c.send("MAIL TO:<a@example.com>\r\n")
                .await
                .starts_with("501")
        );
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn several_messages_per_connection_and_concurrent_connections_are_kept() {
        let sink = SmtpSink::start().await.unwrap();
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(Client::connect(&sink).await);
        }
        for round in 0..2 {
            for (i, c) in clients.iter_mut().enumerate() {
                c.send("MAIL FROM:<>\r\n").await;
                c.send(&format!("RCPT TO:<u{i}@example.com>\r\n")).await;
                c.send("DATA\r\n").await;
                let reply = c
                    .send(&format!("Subject: m{round}\r\n\r\nbody {round}\r\n.\r\n"))
                    .await;
                assert!(reply.starts_with("250"), "{reply}");
            }
        }
        assert_eq!(sink.messages().len(), 6);
        for i in 0..3 {
            for round in 0..2 {
                let mail = sink
                    .wait_for(&format!("u{i}@example.com"), Duration::from_secs(5))
                    .await
                    .unwrap();
                assert_eq!(mail.subject, format!("m{round}"));
                assert_eq!(mail.text, format!("body {round}\r\n"));
                assert_eq!(mail.from, "");
            }
        }
        sink.clear();
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn wait_for_wakes_up_when_the_message_arrives_later() {
        let sink = SmtpSink::start().await.unwrap();
        let mut c = Client::connect(&sink).await;
        let waiting = sink.wait_for("late@example.com", Duration::from_secs(10));
        let sending = async {
            c.send("MAIL FROM:<a@example.com>\r\n").await;
            c.send("RCPT TO:<late@example.com>\r\n").await;
            c.send("DATA\r\n").await;
            c.send("Subject: late\r\n\r\nhi\r\n.\r\n").await
        };
        let (mail, reply) = tokio::join!(waiting, sending);
        assert!(reply.starts_with("250"));
        assert_eq!(mail.unwrap().subject, "late");
    }

    #[tokio::test]
    async fn wait_for_gives_up_after_the_timeout() {
        let sink = SmtpSink::start().await.unwrap();
        let none = sink
            .wait_for("nobody@example.com", Duration::from_millis(50))
            .await;
        assert!(none.is_none());
    }

    #[tokio::test]
    async fn dropping_the_sink_closes_it() {
        let sink = SmtpSink::start().await.unwrap();
        let addr = sink.address();
        let mut c = Client::connect(&sink).await;
        drop(sink);
        tokio::task::yield_now().await;
        // The open connection is closed and new connections are refused.
        let mut rest = String::new();
        let read = c.reader.read_line(&mut rest).await.unwrap_or(0);
        assert_eq!(read, 0);
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
