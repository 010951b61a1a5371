//! A `sophon serve` for the dashboard's tests, and a small HTTP/1.1 client: requests with a
//! session cookie and CSRF token, chunked bodies, server-sent events followed as they arrive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::Sophon;

/// A running `sophon serve`, killed when dropped. Its standard output and error are kept, so a
/// test can look through them.
pub struct Server {
    pub child: Child,
    pub port: u16,
    output: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copy `from` into `to` until it ends.
fn keep(mut from: impl Read + Send + 'static, to: Arc<Mutex<Vec<u8>>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            to.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

impl Server {
    pub fn start(sophon: &Sophon, home: &Path) -> Server {
        Self::start_with(sophon, home, &[])
    }

    /// Started with these environment variables added.
    pub fn start_with(sophon: &Sophon, home: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_full(sophon, home, &[], env)
    }

    /// Started with more arguments for `sophon serve`.
    pub fn start_args(sophon: &Sophon, home: &Path, args: &[&str]) -> Server {
        Self::start_full(sophon, home, args, &[])
    }

    fn start_full(sophon: &Sophon, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = sophon.std_cmd();
        cmd.args(["serve", "--home", home.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let output = Arc::new(Mutex::new(first.clone().into_bytes()));
        let readers = vec![keep(stdout, Arc::clone(&output)), keep(child.stderr.take().unwrap(), Arc::clone(&output))];
        assert!(first.ends_with("/ (plain HTTP: put it behind your TLS proxy)\n"), "{first:?}");
        let addr = first.strip_prefix("dashboard: http://").unwrap().split('/').next().unwrap();
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        Server { child, port, output, readers }
    }

    /// The server's peak resident memory so far (VmHWM), in bytes.
    pub fn peak_memory(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib * 1024
    }

    /// Stop the server and return everything it printed on standard output and error.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in std::mem::take(&mut self.readers) {
            let _ = r.join();
        }
        let out = String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned();
        out
    }

    /// Open a connection and send one request with a body of any type: (content type, bytes).
    fn open(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<(&str, &[u8])>) -> TcpStream {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let data = body.map(|(_, b)| b).unwrap_or_default();
        if let Some((kind, _)) = body {
            req.push_str(&format!("Content-Type: {kind}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", data.len()));
        stream.write_all(req.as_bytes()).unwrap();
        // A server that answers before reading the whole body (a refused upload) may close early.
        let _ = stream.write_all(data);
        stream
    }

    /// One HTTP/1.1 request with a body of any type; the whole answer.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<(&str, &[u8])>) -> Reply {
        let mut stream = self.open(method, path, headers, body);
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        Reply::parse(raw)
    }

    /// One HTTP/1.1 request; the whole answer.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
        match body {
            Some(b) => self.send(method, path, headers, Some(("application/json", b.to_string().as_bytes()))),
            None => self.send(method, path, headers, None),
        }
    }

    pub fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        match cookie {
            Some(c) => self.request("GET", path, &[("Cookie", c)], None),
            None => self.request("GET", path, &[], None),
        }
    }

    pub fn sign_in(&self, email: &str, password: &str) -> Reply {
        self.request("POST", "/api/session", &[], Some(&json!({ "email": email, "password": password })))
    }

    /// Sign in and return the session to act with.
    pub fn user(&self, email: &str, password: &str) -> User {
        let r = self.sign_in(email, password);
        assert_eq!(r.status, 200, "{}", r.body);
        User { cookie: r.cookie(), csrf: r.json()["csrf"].as_str().unwrap().to_string() }
    }

    /// Follow a job's server-sent events as they arrive, handing each to `each` until the job
    /// ends or `each` returns false; returns every event seen.
    pub fn follow(&self, job: &str, user: &User, mut each: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let stream = self.open("GET", &format!("/api/jobs/{job}/events"), &[("Cookie", &user.cookie)], None);
        stream.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
        let mut seen = Vec::new();
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let Some(data) = line.strip_prefix("data:") else { continue };
            let v: Value = serde_json::from_str(data.trim()).unwrap();
            let go_on = each(&v);
            let running = v["state"] == "running";
            seen.push(v);
            if !go_on || !running {
                break;
            }
        }
        seen
    }

    /// The job's last view once it has ended.
    pub fn wait(&self, job: &str, user: &User) -> Value {
        loop {
            let last = self.follow(job, user, |_| true).pop().expect("an event");
            if last["state"] != "running" {
                return last;
            }
        }
    }
}

/// A signed-in user: its cookie and CSRF token.
#[derive(Clone, Debug)]
pub struct User {
    pub cookie: String,
    pub csrf: String,
}

impl User {
    pub fn headers(&self) -> [(&str, &str); 2] {
        [("Cookie", self.cookie.as_str()), ("X-CSRF-Token", self.csrf.as_str())]
    }

    pub fn post(&self, server: &Server, path: &str, body: &Value) -> Reply {
        server.request("POST", path, &self.headers(), Some(body))
    }

    pub fn get(&self, server: &Server, path: &str) -> Reply {
        server.get(path, Some(&self.cookie))
    }
}

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy), de-chunked.
    pub body: String,
    /// The body's bytes, de-chunked.
    pub bytes: Vec<u8>,
    /// Everything received, as text (lossy).
    pub raw: String,
    /// A chunked body that ended without its last chunk (the server broke it off).
    pub cut: bool,
}

impl Reply {
    fn parse(raw: Vec<u8>) -> Reply {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP head");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
            .collect();
        let rest = &raw[split + 4..];
        let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let (bytes, cut) = if chunked { dechunk(rest) } else { (rest.to_vec(), false) };
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
            raw: String::from_utf8_lossy(&raw).into_owned(),
            cut,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {} {}", self.status, self.body))
    }

    /// `sophon_session=…` from Set-Cookie, as a Cookie header value.
    pub fn cookie(&self) -> String {
        self.header("set-cookie").unwrap().split(';').next().unwrap().to_string()
    }

    /// Whether a chunked body ended with its last chunk (a stream cut short does not).
    pub fn complete(&self) -> bool {
        !self.cut
    }
}

/// A chunked body's bytes, and whether it ended before its last (empty) chunk.
fn dechunk(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else { return (out, true) };
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16) else {
            return (out, true);
        };
        rest = &rest[eol + 2..];
        if size == 0 {
            return (out, false);
        }
        if rest.len() < size + 2 {
            out.extend_from_slice(&rest[..size.min(rest.len())]);
            return (out, true);
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A demo sign-in printed by `gateway init --demo --json`.
pub struct Demo {
    pub email: String,
    pub password: String,
    pub tenant: String,
}

/// The demo's owner (default tenant), viewer (of it) and the second tenant's admin.
pub fn demo_users(init_json: &str) -> (Demo, Demo, Demo) {
    let v: Value = serde_json::from_str(init_json).unwrap();
    let users = v["demo"]["sign_ins"].as_array().unwrap();
    let pick = |i: usize| Demo {
        email: users[i]["email"].as_str().unwrap().into(),
        password: users[i]["password"].as_str().unwrap().into(),
        tenant: users[i]["tenant"].as_str().unwrap().into(),
    };
    assert_eq!(users[0]["roles"], json!(["owner", "admin"]));
    assert_eq!(users[1]["roles"], json!(["viewer"]));
    assert_eq!(users[2]["roles"], json!(["admin"]));
    assert_ne!(users[2]["tenant"], users[0]["tenant"]);
    (pick(0), pick(1), pick(2))
}
