//! An HTTP/1.1 client for the dashboard tests: `sophon serve` started on a home, requests with or
//! without a session cookie and CSRF token, and the demo users `gateway init --demo` prints.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};

use serde_json::{json, Value};

use super::Sophon;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A running `sophon serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn start(sophon: &Sophon, home: &Path) -> Server {
        Self::start_with(sophon, home, &[])
    }

    /// [`Server::start`] with more arguments for `sophon serve`.
    pub fn start_with(sophon: &Sophon, home: &Path, args: &[&str]) -> Server {
        let mut child = sophon
            .std_cmd()
            .args(["serve", "--home", s(home), "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let mut server = Server { child, port: 0 };
        assert!(first.ends_with("/ (plain HTTP: put it behind your TLS proxy)\n"), "{first:?}");
        let addr = first.strip_prefix("dashboard: http://").unwrap().split('/').next().unwrap();
        server.port = addr.rsplit(':').next().unwrap().parse().unwrap();
        server
    }

    /// One HTTP/1.1 request with a JSON body (or none).
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
        match body {
            Some(b) => self.send(method, path, headers, Some(("application/json", b.to_string().as_bytes()))),
            None => self.send(method, path, headers, None),
        }
    }

    /// One HTTP/1.1 request with a body of any type: (content type, bytes).
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<(&str, &[u8])>) -> Reply {
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
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        Reply::parse(raw)
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
}

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy), chunked transfer decoded.
    pub body: String,
    /// The whole response as text (lossy), as it came.
    pub raw: String,
    /// The body's bytes, chunked transfer decoded.
    pub bytes: Vec<u8>,
}

impl Reply {
    fn parse(raw: Vec<u8>) -> Reply {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut body = raw[split + 4..].to_vec();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
            .collect();
        if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
            body = dechunk(&body);
        }
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            raw: String::from_utf8_lossy(&raw).into_owned(),
            bytes: body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// `sophon_session=…` from Set-Cookie, as a Cookie header value.
    pub fn cookie(&self) -> String {
        self.header("set-cookie").unwrap().split(';').next().unwrap().to_string()
    }

    /// Whether a chunked body ended with its last chunk (a stream cut short does not).
    pub fn complete(&self) -> bool {
        !self.headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
            || self.raw.ends_with("0\r\n\r\n")
    }
}

/// The data of a chunked body (as much as arrived).
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else { return out };
        let line = String::from_utf8_lossy(&b[..eol]);
        let Ok(n) = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16) else { return out };
        b = &b[eol + 2..];
        if n == 0 || b.len() < n {
            out.extend_from_slice(&b[..n.min(b.len())]);
            return out;
        }
        out.extend_from_slice(&b[..n]);
        b = b.get(n + 2..).unwrap_or_default();
    }
}

pub struct Demo {
    pub email: String,
    pub password: String,
}

/// The owner of the default tenant, a viewer of it, and the admin of another tenant, from
/// `gateway init --demo --json`.
pub fn demo_users(init_json: &str) -> (Demo, Demo, Demo) {
    let v: Value = serde_json::from_str(init_json).unwrap();
    let users = v["demo"]["sign_ins"].as_array().unwrap();
    let pick = |i: usize| Demo {
        email: users[i]["email"].as_str().unwrap().into(),
        password: users[i]["password"].as_str().unwrap().into(),
    };
    assert_eq!(users[0]["roles"], json!(["owner", "admin"]));
    assert_eq!(users[1]["roles"], json!(["viewer"]));
    assert_eq!(users[2]["roles"], json!(["admin"]));
    assert_ne!(users[2]["tenant"], users[0]["tenant"]);
    (pick(0), pick(1), pick(2))
}
