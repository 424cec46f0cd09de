//! Serve one file over HTTP on 127.0.0.1 with the test server (sendfile, Range support), for
//! `bench/bench-download.sh`. Prints the file's URL, then serves until killed.
//!
//! Usage: loopback_server FILE [PORT]

#[allow(dead_code)]
#[path = "../tests/support/http_server.rs"]
mod http_server;

use std::io::Write;
use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(file) = args.next().map(PathBuf::from) else {
        let _ = writeln!(std::io::stderr(), "usage: loopback_server FILE [PORT]");
        std::process::exit(2);
    };
    let port = args.next().unwrap_or_else(|| "0".into());
    let server = http_server::TestServer::start_on(&format!("127.0.0.1:{port}"));
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
