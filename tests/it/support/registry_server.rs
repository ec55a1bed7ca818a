//! Real registries for tests: Debian's `docker-registry` (distribution
//! 2.8) on 127.0.0.1 with a free port and temporary storage, without auth,
//! with htpasswd Basic auth (user `<token>`), or with token auth served by
//! `tokenserver.py`. Every process is stopped by its PID when the guard is
//! dropped.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The repository name of the requests [`RegistryServer::requests`] sends
/// to know that the log is complete.
const SYNC_MARKER: &str = "ferry-log-sync-";

/// The user name Control Plane registries expect.
pub const TOKEN_USER: &str = "<token>";

/// How a test registry authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    Anonymous,
    /// htpasswd (bcrypt) with user `<token>`.
    Basic,
    /// Bearer tokens from a local token server that accepts user `<token>`.
    Token,
}

/// What a client needs to use a registry: where it is and who to be.
/// Tests written against this work for any registry (a simulator's too).
#[derive(Clone, Debug)]
pub struct Target {
    /// `127.0.0.1:PORT`, as written in image references.
    pub host: String,
    /// `(user, password)`, when the registry needs credentials.
    pub credentials: Option<(String, String)>,
}

impl Target {
    pub fn image(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.host)
    }

    /// `user:password`, the form `--src-creds-env` variables hold.
    pub fn creds_value(&self) -> Option<String> {
        self.credentials.as_ref().map(|(user, password)| format!("{user}:{password}"))
    }
}

/// A running registry (and token server); stopped on drop.
pub struct RegistryServer {
    pub target: Target,
    dir: tempfile::TempDir,
    registry: Child,
    token_server: Option<Child>,
}

impl RegistryServer {
    pub fn start(mode: AuthMode) -> Self {
        Self::start_with_password(mode, &format!("secret-{}", std::process::id()))
    }

    /// A registry that accepts user `<token>` with `password`, as an org's
    /// Control Plane registry accepts the org's token.
    pub fn start_with_password(mode: AuthMode, password: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let password = password.to_owned();
        let mut auth = String::new();
        let mut token_server = None;
        match mode {
            AuthMode::Anonymous => {}
            AuthMode::Basic => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", TOKEN_USER, &password])
                    .output()
                    .expect("htpasswd (apache2-utils) is installed by scripts/setup.sh");
                assert!(out.status.success());
                fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
                auth = format!(
                    "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                );
            }
            AuthMode::Token => {
                let token_port = free_port();
                let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
                let status = Command::new("openssl")
                    .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"])
                    .args(["-subj", "/CN=test-token-issuer", "-keyout"])
                    .arg(&key)
                    .arg("-out")
                    .arg(&cert)
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success());
                let script =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/tokenserver.py");
                let log = fs::File::create(dir.path().join("token.log")).unwrap();
                let child = Command::new("python3")
                    .arg(script)
                    .arg(token_port.to_string())
                    .arg(&key)
                    .arg(&cert)
                    .args(["test-issuer", "test-registry", &password])
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .unwrap();
                token_server = Some(child);
                wait_for_port(token_port);
                auth = format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                    cert.display()
                );
            }
        }
        let (registry, port) = start_registry(dir.path(), &auth);
        let credentials =
            (mode != AuthMode::Anonymous).then(|| (TOKEN_USER.to_owned(), password.clone()));
        Self {
            target: Target { host: format!("127.0.0.1:{port}"), credentials },
            dir,
            registry,
            token_server,
        }
    }

    /// Where the registry keeps a blob's bytes.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Every request the registry has logged so far. The access log line
    /// is written just after the response is sent, so this sends a marker
    /// request of its own and reads the log until the marker is in it
    /// (polling, no fixed wait); marker lines are left out.
    pub fn requests(&self) -> Vec<Request> {
        static MARKERS: AtomicU64 = AtomicU64::new(0);
        let marker =
            format!("/v2/{SYNC_MARKER}{}/tags/list", MARKERS.fetch_add(1, Ordering::Relaxed));
        let mut stream = TcpStream::connect(&self.target.host).expect("registry reachable");
        let request = format!(
            "GET {marker} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.target.host
        );
        stream.write_all(request.as_bytes()).expect("marker request");
        let _ = stream.read_to_end(&mut Vec::new());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
            if log.contains(&marker) {
                return log.lines().filter_map(Request::parse).collect();
            }
            assert!(Instant::now() < deadline, "the registry never logged {marker}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The query strings of the token requests so far (token auth only).
    pub fn token_requests(&self) -> Vec<String> {
        let log = fs::read_to_string(self.dir.path().join("token.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| l.split_once("GET /token?").map(|(_, query)| query.to_owned()))
            .collect()
    }
}

impl Drop for RegistryServer {
    /// Every request Ferry sent (by its `User-Agent`) must be in
    /// docs/control-plane-api.md; then the processes are stopped.
    fn drop(&mut self) {
        if !std::thread::panicking() && self.registry.try_wait().is_ok_and(|e| e.is_none()) {
            let requests = self.requests();
            let ferrys = requests.iter().filter(|r| r.agent.starts_with("ferry/"));
            let missing =
                super::api_table::missing(ferrys.map(|r| (r.method.as_str(), r.path.as_str())));
            super::api_table::fail_on(&missing, "a docker-registry");
        }
        for child in std::iter::once(&mut self.registry).chain(self.token_server.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One line of the registry's access log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The client's `User-Agent` (the last quoted field).
    pub agent: String,
}

impl Request {
    /// `… "PUT /v2/app/manifests/v1 HTTP/1.1" 201 …` (combined log format).
    fn parse(line: &str) -> Option<Self> {
        let (_, rest) = line.split_once('"')?;
        let (request, rest) = rest.split_once('"')?;
        let mut parts = request.split(' ');
        let (method, path) = (parts.next()?, parts.next()?);
        if !path.starts_with("/v2/") || path.contains(SYNC_MARKER) {
            return None;
        }
        let status = rest.trim_start().split(' ').next()?.parse().ok()?;
        let agent = rest.trim_end().strip_suffix('"')?.rsplit_once('"')?.1.to_owned();
        Some(Self { method: method.to_owned(), path: path.to_owned(), status, agent })
    }

    /// A request that reads or writes blob content (not a HEAD).
    pub fn moves_blob(&self) -> bool {
        self.path.contains("/blobs/") && self.method != "HEAD"
    }
}

/// Starts `docker-registry` in `dir` on a free port; the child and its
/// port once it says it is listening there. A port found free can be
/// taken by another test's server before the registry binds it (the
/// registry then exits with "address already in use" while the other
/// server answers on that port), so the registry's own log line decides,
/// and a lost port is tried again with another.
fn start_registry(dir: &Path, auth: &str) -> (Child, u16) {
    for _ in 0..5 {
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.join("storage").display()
        );
        fs::write(dir.join("config.yml"), config).unwrap();
        let log_path = dir.join("registry.log");
        let log = fs::File::create(&log_path).unwrap();
        let mut registry = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry is installed by scripts/setup.sh");
        let listening = format!("listening on 127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if fs::read_to_string(&log_path).is_ok_and(|log| log.contains(&listening)) {
                return (registry, port);
            }
            if registry.try_wait().unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "docker-registry never listened on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("docker-registry could not bind a free port in 5 tries");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
