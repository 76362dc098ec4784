//! Test servers of the push tests: a TCP proxy that counts what clients send (layer bytes go up
//! in requests) and can cut one connection once, and fake registries that refuse, stall or lose an
//! upload to a cut.

use lamina_testkit::compress::sha256;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A proxy to 127.0.0.1:`upstream`: counts request bytes; with `cut_after`, shuts one connection
/// (both ways) once that many request bytes have passed through the proxy in all.
pub struct CountingProxy {
    pub port: u16,
    sent: Arc<AtomicU64>,
    cut: Arc<AtomicBool>,
}

impl CountingProxy {
    pub fn start(upstream: u16, cut_after: Option<u64>) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listens");
        let port = listener.local_addr().expect("addr").port();
        let sent = Arc::new(AtomicU64::new(0));
        let cut = Arc::new(AtomicBool::new(false));
        let (sent2, cut2) = (sent.clone(), cut.clone());
        // Lives as long as the test process; each connection as long as its peers.
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut c_in, mut u_out) = (
                    client.try_clone().expect("clone"),
                    up.try_clone().expect("clone"),
                );
                let (sent, cut) = (sent2.clone(), cut2.clone());
                let (c_kill, u_kill) = (
                    client.try_clone().expect("clone"),
                    up.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match c_in.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                        if cut_after.is_some_and(|c| total >= c)
                            && !cut.swap(true, Ordering::SeqCst)
                        {
                            let _ = c_kill.shutdown(Shutdown::Both);
                            let _ = u_kill.shutdown(Shutdown::Both);
                            return;
                        }
                        if u_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = u_out.shutdown(Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let (mut up, mut down) = (up, client);
                    let _ = std::io::copy(&mut up, &mut down);
                    let _ = down.shutdown(Shutdown::Write);
                });
            }
        });
        CountingProxy { port, sent, cut }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Request bytes carried so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    pub fn has_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }
}

/// A registry that answers `GET /v2/` and refuses every upload (403 DENIED); blobs are unknown.
pub fn refusing_registry() -> u16 {
    serve(|method, _path| {
        match method {
        "GET" => (200, "{}".into()),
        "HEAD" => (404, String::new()),
        _ => (
            403,
            r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#
                .into(),
        ),
    }
    })
}

/// A server that accepts connections and never answers.
pub fn stalling_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = vec![];
        for c in listener.incoming().map_while(Result::ok) {
            held.push(c);
        }
    });
    port
}

/// A tiny HTTP/1.1 server: `answer(method, path)` gives status and JSON body (the path with its
/// query, as the client sent it).
pub fn serve(answer: impl Fn(&str, &str) -> (u16, String) + Send + Sync + 'static) -> u16 {
    let answer = Arc::new(answer);
    listen(move |mut r, mut w| {
        while let Some(req) = Request::read(&mut r) {
            let mut body = vec![0u8; req.length];
            if r.read_exact(&mut body).is_err() {
                return;
            }
            let (status, body) = answer(&req.method, &req.path);
            if reply(&mut w, &req.method, status, &[], &body).is_err() {
                return;
            }
        }
    })
}

/// Listens on a port of 127.0.0.1 and hands each connection (a reader and a writer) to `handle`
/// on a thread of its own.
fn listen(handle: impl Fn(BufReader<TcpStream>, TcpStream) + Send + Sync + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for c in listener.incoming().map_while(Result::ok) {
            let handle = handle.clone();
            std::thread::spawn(move || handle(BufReader::new(c.try_clone().expect("clone")), c));
        }
    });
    port
}

/// A request's line and the length of its body (left unread).
struct Request {
    method: String,
    path: String,
    length: usize,
}

impl Request {
    fn read(r: &mut BufReader<TcpStream>) -> Option<Request> {
        let mut first = String::new();
        if r.read_line(&mut first).ok()? == 0 {
            return None;
        }
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).ok()? == 0 {
                return None;
            }
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut parts = first.split(' ');
        Some(Request {
            method: parts.next().unwrap_or("").to_string(),
            path: parts.next().unwrap_or("").to_string(),
            length,
        })
    }
}

/// Writes one response, as distribution's look (JSON, its API version header); a HEAD's has no body.
fn reply(
    w: &mut TcpStream,
    method: &str,
    status: u16,
    headers: &[(&str, String)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
         Docker-Distribution-Api-Version: registry/2.0\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let body = if method == "HEAD" { "" } else { body };
    w.write_all(format!("{head}{body}").as_bytes())
}

/// Bytes by name (a digest, or an upload's path), shared between a test server and its test.
pub type Held = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// A registry (uploads, blobs, manifests, all held in memory, digests checked) that loses the
/// first upload session to a cut, as distribution does when a broken PATCH's bytes land after it
/// answered the GET that resumed it: the first PATCH is cut after 1 MiB of its body, a GET of that
/// upload says nothing is held, and any later request to it is 404 BLOB_UPLOAD_INVALID.
pub fn session_losing_registry() -> (u16, Held) {
    let blobs: Held = Arc::default();
    let uploads: Held = Arc::default();
    let next = Arc::new(AtomicU64::new(1));
    let cut = Arc::new(AtomicBool::new(false));
    let held = blobs.clone();
    let port = listen(move |mut r, mut w| {
        while let Some(req) = Request::read(&mut r) {
            let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
            let lost = path.ends_with("/uploads/1");
            if lost && req.method == "PATCH" && !cut.swap(true, Ordering::SeqCst) {
                // the cut: half a request read, no answer, the session spoiled
                let mut part = vec![0u8; req.length.min(1 << 20)];
                let _ = r.read_exact(&mut part);
                let _ = w.shutdown(Shutdown::Both);
                return;
            }
            let mut body = vec![0u8; req.length];
            if r.read_exact(&mut body).is_err() {
                return;
            }
            let (status, headers, text) = match req.method.as_str() {
                "GET" if path == "/v2/" => (200, vec![], "{}".to_string()),
                "GET" if lost => (
                    204,
                    vec![("Location", path.to_string()), ("Range", "0-0".into())],
                    String::new(),
                ),
                "PATCH" | "PUT" if lost => (
                    404,
                    vec![],
                    r#"{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"blob upload invalid"}]}"#
                        .to_string(),
                ),
                "POST" if path.ends_with("/blobs/uploads/") => {
                    let at = format!("{path}{}", next.fetch_add(1, Ordering::SeqCst));
                    uploads.lock().unwrap().insert(at.clone(), vec![]);
                    (202, vec![("Location", at), ("Range", "0-0".into())], String::new())
                }
                "PATCH" => {
                    let mut up = uploads.lock().unwrap();
                    let data = up.entry(path.to_string()).or_default();
                    data.extend_from_slice(&body);
                    let range = format!("0-{}", data.len().saturating_sub(1));
                    (202, vec![("Location", path.to_string()), ("Range", range)], String::new())
                }
                "PUT" if path.contains("/blobs/uploads/") => {
                    let mut data = uploads.lock().unwrap().remove(path).unwrap_or_default();
                    data.extend_from_slice(&body);
                    let want = query.strip_prefix("digest=").unwrap_or("").to_string();
                    if sha256(&data) == want {
                        held.lock().unwrap().insert(want.clone(), data);
                        (201, vec![("Docker-Content-Digest", want)], String::new())
                    } else {
                        let e = r#"{"errors":[{"code":"DIGEST_INVALID","message":"digest invalid"}]}"#;
                        (400, vec![], e.to_string())
                    }
                }
                "PUT" if path.contains("/manifests/") => {
                    let digest = sha256(&body);
                    held.lock().unwrap().insert(digest.clone(), body);
                    (201, vec![("Docker-Content-Digest", digest)], String::new())
                }
                "HEAD" => {
                    let digest = path.rsplit('/').next().unwrap_or("");
                    let status = if held.lock().unwrap().contains_key(digest) { 200 } else { 404 };
                    (status, vec![], String::new())
                }
                _ => (405, vec![], String::new()),
            };
            if reply(&mut w, &req.method, status, &headers, &text).is_err() {
                return;
            }
        }
    });
    (port, blobs)
}
