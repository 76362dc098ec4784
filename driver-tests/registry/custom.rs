//! A distribution registry with a config of the test's own (registry-up.sh writes its config
//! itself): client-certificate TLS (`http.tls.clientcas`), read-only storage
//! (`storage.maintenance.readonly`). Started on a free 127.0.0.1 port, killed (by the pid this
//! process started) on drop. Also the openssl steps that make the certificates.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct CustomRegistry {
    pub port: u16,
    child: Child,
}

/// Extra config: `storage_extra` is indented under `storage:`, `tls_extra` under `http.tls:`
/// (with `tls` given: the server's certificate and key).
pub struct Config<'a> {
    pub tls: Option<(&'a Path, &'a Path)>,
    pub tls_extra: &'a str,
    pub storage_extra: &'a str,
}

impl CustomRegistry {
    pub fn start(dir: &Path, c: Config) -> CustomRegistry {
        let port = free_port();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let mut yml = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n{}\
             http:\n  addr: 127.0.0.1:{port}\n",
            data.display(),
            c.storage_extra
        );
        if let Some((cert, key)) = c.tls {
            yml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n{}",
                cert.display(),
                key.display(),
                c.tls_extra
            ));
        }
        let config = dir.join("config.yml");
        std::fs::write(&config, yml).expect("config.yml");
        let log = std::fs::File::create(dir.join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let r = CustomRegistry { port, child };
        // listening is enough: what it answers is the test's business
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start: {}",
                std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for CustomRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate (`NAME.pem`, `NAME.key` in `dir`) for `subject`, valid for 127.0.0.1.
pub fn self_signed(dir: &Path, name: &str, subject: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        subject,
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        s(&key),
        "-out",
        s(&cert),
    ]);
    (cert, key)
}

/// A client certificate (`NAME.pem`, `NAME.key`) signed by the CA `ca` (cert, key).
pub fn client_cert(dir: &Path, name: &str, ca: &(PathBuf, PathBuf)) -> (PathBuf, PathBuf) {
    let (cert, key, csr) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
    );
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=lamina-client",
        "-keyout",
        s(&key),
        "-out",
        s(&csr),
    ]);
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(&ext, "extendedKeyUsage=clientAuth\n").expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&ca.0),
        "-CAkey",
        s(&ca.1),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        s(&ext),
        "-out",
        s(&cert),
    ]);
    (cert, key)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
