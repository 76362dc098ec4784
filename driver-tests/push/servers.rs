//! Test servers of the push tests: a TCP proxy that counts what clients send (layer bytes go up
//! in requests) and can cut one connection once, and fake registries that refuse or stall.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

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
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for c in listener.incoming().map_while(Result::ok) {
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(c.try_clone().expect("clone"));
                let mut w = c;
                loop {
                    let mut first = String::new();
                    if r.read_line(&mut first).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
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
                    let mut body = vec![0u8; length];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let mut parts = first.split(' ');
                    let method = parts.next().unwrap_or("");
                    let path = parts.next().unwrap_or("");
                    let (status, body) = answer(method, path);
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                         Docker-Distribution-Api-Version: registry/2.0\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let body = if method == "HEAD" { "" } else { body.as_str() };
                    if w.write_all(format!("{head}{body}").as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}
