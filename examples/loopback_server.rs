//! Serve one file over HTTP on 127.0.0.1 with the test server (sendfile, Range support), for
//! `bench/bench-download.sh`. Prints the file's URL, then serves until killed. With
//! BYTES_PER_S, every connection is capped at that rate (as CDNs cap each connection).
//!
//! Usage: loopback_server FILE [PORT [BYTES_PER_S]]

#[allow(dead_code)]
#[path = "../tests/support/http_server.rs"]
mod http_server;

use std::io::Write;
use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(file) = args.next().map(PathBuf::from) else {
        let _ = writeln!(
            std::io::stderr(),
            "usage: loopback_server FILE [PORT [BYTES_PER_S]]"
        );
        std::process::exit(2);
    };
    let port = args.next().unwrap_or_else(|| "0".into());
    let rate = match args.next().map(|r| r.parse::<u64>()) {
        None => None,
        Some(Ok(r)) if r > 0 => Some(r),
        Some(_) => {
            let _ = writeln!(std::io::stderr(), "BYTES_PER_S must be a positive integer");
            std::process::exit(2);
        }
    };
    let server = http_server::TestServer::start_on(&format!("127.0.0.1:{port}"));
    server.set_faults(http_server::Faults {
        rate_bytes_per_s: rate,
        ..http_server::Faults::default()
    });
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    server.add_disk_file(&format!("/{name}"), file);
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", server.url(&format!("/{name}")));
    let _ = out.flush();
    loop {
        std::thread::park();
    }
}
