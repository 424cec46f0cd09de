//! A small HTTP/1.1 file server on 127.0.0.1 for download tests, with switches for faults.
//!
//! One thread per connection, `Connection: close` on every response, GET and HEAD, single byte
//! ranges (`bytes=N-` and `bytes=N-M`). It records every request (path, Range, Authorization,
//! Host) and counts the body bytes it sent, so tests can assert what a client fetched and what
//! headers reached which host. Faults are set with [`TestServer::set_faults`] and apply to the
//! next file requests; those with a count apply that many times.
//!
//! `localhost_url` names the same server by another host name, and a second `TestServer` is
//! another origin (another port): both serve to test that credentials do not follow a redirect.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Faults to inject. `Default` is a well-behaved server.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer 200 with the whole file even when a range was asked for.
    pub ignore_range: bool,
    /// Answer a range request with 206 and a Content-Range that starts at 0 instead.
    pub wrong_range_start: bool,
    /// Answer the next `n` file requests with `status` (and `Retry-After` when set).
    pub fail: Option<Fail>,
    /// On the next `times` responses, close the connection after `after_bytes` body bytes
    /// although Content-Length promised more.
    pub cut: Option<Times>,
    /// On the next `times` responses, stop sending after `after_bytes` body bytes and keep the
    /// connection open (until the client gives up or the server is dropped).
    pub stall: Option<Times>,
    /// Read the next `n` file requests and answer nothing, keeping the connection open.
    pub silent: usize,
    /// Change one byte in the middle of every body (the client gets wrong bytes).
    pub corrupt: bool,
    /// Send bodies in chunks of this many bytes with this pause after each.
    pub throttle: Option<(usize, Duration)>,
    /// Cap every connection at this many body bytes per second (as CDNs do), pacing each
    /// 64 KiB chunk against the time the body started.
    pub rate_bytes_per_s: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
pub struct Fail {
    pub status: u16,
    pub times: usize,
    pub retry_after_s: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
pub struct Times {
    pub after_bytes: u64,
    pub times: usize,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub host: Option<String>,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Clone)]
enum Route {
    Bytes(Arc<[u8]>),
    Disk(PathBuf, u64),
    Redirect(String),
}

struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    /// Response headers added for a path (to its redirect as well as to its file).
    extra_headers: Mutex<HashMap<String, Vec<(String, String)>>>,
    bearer: Mutex<Option<String>>,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<SeenRequest>>,
    /// (generation, body bytes sent by connections of that generation): `reset_counters`
    /// starts a new generation, so a connection left over from before does not count.
    sent: Mutex<(u64, u64)>,
    stop: AtomicBool,
}

/// A running server; stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl TestServer {
    /// Listen on an ephemeral port of 127.0.0.1.
    pub fn start() -> TestServer {
        TestServer::start_on("127.0.0.1:0")
    }

    /// Listen on `addr` (e.g. `127.0.0.1:8080`).
    pub fn start_on(addr: &str) -> TestServer {
        let listener = TcpListener::bind(addr).expect("bind the test server");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            extra_headers: Mutex::new(HashMap::new()),
            bearer: Mutex::new(None),
            faults: Mutex::new(Faults::default()),
            requests: Mutex::new(Vec::new()),
            sent: Mutex::new((0, 0)),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = conn {
                    let s = s.clone();
                    thread::spawn(move || {
                        let _ = handle(stream, &s);
                    });
                }
            }
        });
        TestServer { addr, shared }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The same server under the host name `localhost`: another origin for the client.
    pub fn localhost_url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.addr.port())
    }

    /// Serve `content` at `path` (e.g. `/m.gguf`).
    pub fn add_file(&self, path: &str, content: impl Into<Arc<[u8]>>) {
        self.route(path, Route::Bytes(content.into()));
    }

    /// Serve a file from disk at `path`, sent with `std::io::copy` (sendfile on Linux) when no
    /// fault applies. For large benchmark files.
    pub fn add_disk_file(&self, path: &str, file: PathBuf) {
        let len = std::fs::metadata(&file).expect("served file").len();
        self.route(path, Route::Disk(file, len));
    }

    /// Answer `path` with `302 Found` to `location`.
    pub fn add_redirect(&self, path: &str, location: &str) {
        self.route(path, Route::Redirect(location.to_string()));
    }

    /// Send these headers with every answer for `path` (as Hugging Face sends `X-Linked-Etag`
    /// with its redirect to the CDN).
    pub fn add_headers(&self, path: &str, headers: &[(&str, &str)]) {
        self.shared.extra_headers.lock().unwrap().insert(
            path.to_string(),
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }

    /// Answer file requests with 401 unless they carry `Authorization: Bearer {token}`.
    pub fn require_bearer(&self, token: &str) {
        *self.shared.bearer.lock().unwrap() = Some(format!("Bearer {token}"));
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap() = faults;
    }

    /// Body bytes written to sockets by connections accepted since the start or the last
    /// `reset_counters`.
    pub fn body_bytes_sent(&self) -> u64 {
        self.shared.sent.lock().unwrap().1
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    pub fn reset_counters(&self) {
        let mut sent = self.shared.sent.lock().unwrap();
        *sent = (sent.0 + 1, 0);
        self.shared.requests.lock().unwrap().clear();
    }

    fn route(&self, path: &str, r: Route) {
        self.shared
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), r);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// What one response does, decided under the faults lock.
#[derive(Default)]
struct Plan {
    silent: bool,
    fail: Option<Fail>,
    cut_after: Option<u64>,
    stall_after: Option<u64>,
}

fn handle(stream: TcpStream, s: &Shared) -> io::Result<()> {
    let generation = s.sent.lock().unwrap().0;
    let count = |n: u64| {
        let mut sent = s.sent.lock().unwrap();
        if sent.0 == generation {
            sent.1 += n;
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers: HashMap<String, String> = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    s.requests.lock().unwrap().push(SeenRequest {
        method: method.clone(),
        path: path.clone(),
        host: headers.get("host").cloned(),
        range: headers.get("range").cloned(),
        authorization: headers.get("authorization").cloned(),
    });
    let route = s.routes.lock().unwrap().get(&path).cloned();
    let extra = s
        .extra_headers
        .lock()
        .unwrap()
        .get(&path)
        .cloned()
        .unwrap_or_default();
    let route = match route {
        None => return simple(&mut out, "404 Not Found", &[]),
        Some(Route::Redirect(to)) => {
            let mut h: Vec<(&str, &str)> = vec![("Location", &to)];
            h.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            return simple(&mut out, "302 Found", &h);
        }
        Some(r) => r,
    };
    if let Some(want) = s.bearer.lock().unwrap().clone() {
        if headers.get("authorization") != Some(&want) {
            return simple(
                &mut out,
                "401 Unauthorized",
                &[("WWW-Authenticate", "Bearer")],
            );
        }
    }
    let (faults, plan) = {
        let mut f = s.faults.lock().unwrap();
        let mut plan = Plan::default();
        if f.silent > 0 {
            f.silent -= 1;
            plan.silent = true;
        }
        if let Some(fail) = f.fail.as_mut().filter(|x| x.times > 0) {
            fail.times -= 1;
            plan.fail = Some(*fail);
        }
        if plan.fail.is_none() {
            if let Some(c) = f.cut.as_mut().filter(|x| x.times > 0) {
                c.times -= 1;
                plan.cut_after = Some(c.after_bytes);
            }
            if let Some(st) = f.stall.as_mut().filter(|x| x.times > 0) {
                st.times -= 1;
                plan.stall_after = Some(st.after_bytes);
            }
        }
        (f.clone(), plan)
    };
    if plan.silent {
        hold_open(&out, s);
        return Ok(());
    }
    if let Some(fail) = plan.fail {
        let ra = fail.retry_after_s.map(|r| r.to_string());
        let mut extra: Vec<(&str, &str)> = Vec::new();
        if let Some(r) = &ra {
            extra.push(("Retry-After", r));
        }
        return simple(&mut out, &status_line(fail.status), &extra);
    }

    let len = match &route {
        Route::Bytes(b) => b.len() as u64,
        Route::Disk(_, l) => *l,
        Route::Redirect(_) => 0,
    };
    let range = headers.get("range").and_then(|r| parse_range(r, len));
    let ranged = headers.contains_key("range") && !faults.ignore_range;
    let (status, start, end) = match (ranged, range) {
        (true, Some((a, b))) => ("206 Partial Content", a, b),
        (true, None) => {
            let cr = format!("bytes */{len}");
            return simple(
                &mut out,
                "416 Range Not Satisfiable",
                &[("Content-Range", &cr)],
            );
        }
        (false, _) => ("200 OK", 0, len),
    };
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n",
        end - start
    );
    for (k, v) in &extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if status.starts_with("206") {
        let shown_start = if faults.wrong_range_start { 0 } else { start };
        head.push_str(&format!(
            "Content-Range: bytes {shown_start}-{}/{len}\r\n",
            shown_start + (end - start) - 1
        ));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    if method == "HEAD" {
        return Ok(());
    }

    let plain = plan.cut_after.is_none()
        && plan.stall_after.is_none()
        && !faults.corrupt
        && faults.throttle.is_none()
        && faults.rate_bytes_per_s.is_none();
    if let (Route::Disk(p, _), true) = (&route, plain) {
        let mut f = File::open(p)?;
        f.seek(SeekFrom::Start(start))?;
        let n = io::copy(&mut f.take(end - start), &mut out)?;
        count(n);
        return Ok(());
    }
    let limit = plan
        .cut_after
        .or(plan.stall_after)
        .map(|n| n.min(end - start))
        .unwrap_or(end - start);
    let chunk = faults.throttle.map(|(c, _)| c).unwrap_or(64 << 10).max(1);
    let corrupt_at = if faults.corrupt { Some(len / 2) } else { None };
    let mut pos = start;
    let mut disk = match &route {
        Route::Disk(p, _) => {
            let mut f = File::open(p)?;
            f.seek(SeekFrom::Start(start))?;
            Some(f)
        }
        _ => None,
    };
    let mut buf = vec![0u8; chunk];
    let body_started = Instant::now();
    while pos < start + limit {
        let n = chunk.min((start + limit - pos) as usize);
        match (&route, disk.as_mut()) {
            (Route::Bytes(b), _) => buf[..n].copy_from_slice(&b[pos as usize..pos as usize + n]),
            (_, Some(f)) => f.read_exact(&mut buf[..n])?,
            _ => unreachable!(),
        }
        if let Some(c) = corrupt_at.filter(|c| (pos..pos + n as u64).contains(c)) {
            buf[(c - pos) as usize] ^= 0xff;
        }
        out.write_all(&buf[..n])?;
        count(n as u64);
        pos += n as u64;
        if let Some((_, pause)) = faults.throttle {
            thread::sleep(pause);
        }
        if let Some(rate) = faults.rate_bytes_per_s.filter(|r| *r > 0) {
            let due = Duration::from_secs_f64((pos - start) as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(body_started.elapsed()) {
                thread::sleep(wait);
            }
        }
    }
    out.flush()?;
    if plan.stall_after.is_some() && pos < end {
        hold_open(&out, s);
    }
    let _ = out.shutdown(Shutdown::Both);
    Ok(())
}

/// Keep a connection open without sending anything, until the client closes it, the server
/// is dropped, or 20 s pass.
fn hold_open(out: &TcpStream, s: &Shared) {
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until && !s.stop.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(10));
        let mut probe = [0u8; 1];
        if out.set_nonblocking(true).is_err() {
            return;
        }
        let r = (&*out).read(&mut probe);
        let _ = out.set_nonblocking(false);
        match r {
            Ok(0) => return,
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return,
            _ => {}
        }
    }
}

fn simple(out: &mut TcpStream, status: &str, extra: &[(&str, &str)]) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n");
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

fn status_line(code: u16) -> String {
    let reason = match code {
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    format!("{code} {reason}")
}

/// `bytes=N-` or `bytes=N-M` within `len`, as a half-open range; `None` if unsatisfiable.
fn parse_range(v: &str, len: u64) -> Option<(u64, u64)> {
    let spec = v.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end = match b.trim() {
        "" => len,
        e => e.parse::<u64>().ok()?.saturating_add(1).min(len),
    };
    (start < end).then_some((start, end))
}
