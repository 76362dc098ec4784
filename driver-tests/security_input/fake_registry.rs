//! A hostile registry in a few lines: plain HTTP on 127.0.0.1 (which lamina, as docker, treats as
//! an insecure registry: it tries HTTPS, then HTTP), answering each GET from a handler the test
//! writes. `/v2/` always answers 200. Every connection is closed after one answer.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One answer: status, extra headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    pub fn redirect(location: &str) -> Answer {
        Answer {
            status: 302,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }

    pub fn not_found() -> Answer {
        Answer {
            status: 404,
            headers: Vec::new(),
            body: br#"{"errors":[{"code":"NOT_FOUND","message":"no"}]}"#.to_vec(),
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Answer {
        self.headers.push((k.into(), v.into()));
        self
    }
}

pub type Handler = dyn Fn(&str) -> Answer + Send + Sync;

/// Serves until the test process ends (the accept thread is detached).
pub struct FakeRegistry {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl FakeRegistry {
    pub fn start(handler: impl Fn(&str) -> Answer + Send + Sync + 'static) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let handler = handler.clone();
                let count = count.clone();
                std::thread::spawn(move || serve(conn, &*handler, &count));
            }
        });
        FakeRegistry { port, requests }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// GETs answered so far (without `/v2/`).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn serve(conn: TcpStream, handler: &Handler, count: &AtomicUsize) {
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let mut r = BufReader::new(&conn);
    // A TLS ClientHello (lamina tries HTTPS first) starts with 0x16: no HTTPS here.
    match r.fill_buf() {
        Ok(b) if !b.is_empty() && b[0] != 0x16 => {}
        _ => return,
    }
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split(' ').nth(1).unwrap_or("").to_string();
    loop {
        let mut h = String::new();
        match r.read_line(&mut h) {
            Ok(0) | Err(_) => return,
            Ok(_) if h == "\r\n" || h == "\n" => break,
            Ok(_) => {}
        }
    }
    let answer = if path == "/v2/" {
        Answer::json("{}")
    } else {
        count.fetch_add(1, Ordering::SeqCst);
        handler(&path)
    };
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    for (k, v) in &answer.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut w = &conn;
    let _ = w.write_all(head.as_bytes());
    let _ = w.write_all(&answer.body);
    let _ = w.flush();
}
