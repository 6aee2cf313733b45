//! Running one check: HTTP(S) through hyper's HTTP/1 client (over rustls for HTTPS), a TCP
//! connection, a name resolution; everything within the probe's timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::spec::{HttpProbe, ProbeSpec, ProbeTarget};

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProbeResult {
    /// The check passed.
    pub success: bool,
    /// How long it took (to the failure, for a failed one).
    pub duration: Duration,
    /// The HTTP status of the answer, if one came.
    pub status: Option<u16>,
    /// Seconds until the HTTPS server's certificate expires (negative once expired).
    pub cert_expiry: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// A probe ready to run: its spec and, for HTTPS, its TLS client settings.
#[derive(Clone)]
pub(super) struct Prober {
    pub(super) spec: ProbeSpec,
    tls: Option<Arc<rustls::ClientConfig>>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[derive(Default)]
struct Found {
    status: Option<u16>,
    cert_expiry: Option<f64>,
}

impl Prober {
    /// Prepares `spec` (reads its CA file, builds its TLS settings).
    pub(super) fn new(spec: ProbeSpec) -> Result<Prober, String> {
        let tls = match &spec.target {
            ProbeTarget::Http(h) if h.url.scheme_str() == Some("https") => {
                Some(super::tls::client_config(h.ca_file.as_deref(), h.verify)?)
            }
            ProbeTarget::Http(_) | ProbeTarget::Tcp(_) | ProbeTarget::Dns(_) => None,
        };
        Ok(Prober { spec, tls })
    }

    /// Runs the check once, within the timeout.
    pub(super) async fn run(&self) -> ProbeResult {
        let started = Instant::now();
        let mut found = Found::default();
        let outcome = tokio::time::timeout(self.spec.timeout, self.attempt(&mut found)).await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(format!(
                "no answer within {}",
                crate::duration::format_duration(self.spec.timeout)
            )),
        };
        ProbeResult {
            success: error.is_none(),
            duration: started.elapsed(),
            status: found.status,
            cert_expiry: found.cert_expiry,
            error,
        }
    }

    async fn attempt(&self, found: &mut Found) -> Result<(), String> {
        match &self.spec.target {
            ProbeTarget::Tcp(address) => connect(address).await.map(drop),
            ProbeTarget::Dns(name) => {
                let mut addrs = tokio::net::lookup_host((name.as_str(), 0))
                    .await
                    .map_err(|e| format!("cannot resolve {name}: {e}"))?;
                addrs
                    .next()
                    .map(drop)
                    .ok_or_else(|| format!("{name} resolves to no address"))
            }
            ProbeTarget::Http(h) => self.http(h, found).await,
        }
    }

    async fn http(&self, h: &HttpProbe, found: &mut Found) -> Result<(), String> {
        let host = h.url.host().unwrap_or_default();
        let https = h.url.scheme_str() == Some("https");
        let port = h.url.port_u16().unwrap_or(if https { 443 } else { 80 });
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = connect(&format_authority(bare, port)).await?;
        let io: Box<dyn Io> = match &self.tls {
            Some(config) if https => {
                let name = rustls::pki_types::ServerName::try_from(bare.to_owned())
                    .map_err(|e| format!("bad server name {bare}: {e}"))?;
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                let leaf = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| super::tls::not_after(c));
                if let Some(at) = leaf {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    found.cert_expiry = Some(at as f64 - now);
                }
                Box::new(tls)
            }
            _ => Box::new(tcp),
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let driver = tokio::spawn(connection);
        let path = h.url.path_and_query().map_or("/", |p| p.as_str());
        let authority = h.url.authority().map_or(host, |a| a.as_str());
        let request = http::Request::builder()
            .method(h.method.clone())
            .uri(path)
            .header(http::header::HOST, authority)
            .header(http::header::USER_AGENT, "vigilo-probe")
            .header(http::header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("bad request: {e}"))?;
        let result = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("HTTP: {e}"))?;
            let status = response.status().as_u16();
            found.status = Some(status);
            let mut body = response.into_body();
            let mut read = Vec::new();
            if h.body.is_some() {
                while read.len() < h.max_body {
                    match body.frame().await {
                        Some(Ok(frame)) => {
                            if let Some(data) = frame.data_ref() {
                                let room = h.max_body - read.len();
                                read.extend_from_slice(&data[..data.len().min(room)]);
                            }
                        }
                        Some(Err(e)) => return Err(format!("reading the body: {e}")),
                        None => break,
                    }
                }
            }
            let status_ok = if h.status.is_empty() {
                (200..300).contains(&status)
            } else {
                h.status.contains(&status)
            };
            if !status_ok {
                return Err(format!("status {status}"));
            }
            match &h.body {
                Some(re) if !re.is_match(&read) => {
                    Err(format!("the body does not match {:?}", re.as_str()))
                }
                _ => Ok(()),
            }
        }
        .await;
        driver.abort();
        result
    }
}

fn format_authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Connects to `address` (`host:port`), trying each address it resolves to in turn.
async fn connect(address: &str) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(address)
        .await
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .collect();
    let mut last = format!("{address} resolves to no address");
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connect {a}: {e}"),
        }
    }
    Err(last)
}

/// Runs `spec` once on the caller's thread and returns what it found (without recording).
pub fn check_once(spec: &ProbeSpec) -> ProbeResult {
    let failed = |e: String| ProbeResult {
        success: false,
        duration: Duration::ZERO,
        status: None,
        cert_expiry: None,
        error: Some(e),
    };
    let prober = match Prober::new(spec.clone()) {
        Ok(p) => p,
        Err(e) => return failed(e),
    };
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(prober.run()),
        Err(e) => failed(format!("cannot start a runtime: {e}")),
    }
}
