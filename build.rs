//! Where the binary finds llama.cpp's shared libraries (`libllama`, `libggml*`), in order:
//! `<prefix>/lib/minerva-setup` next to `<prefix>/bin` (what installers/install.sh lays out),
//! the binary's own directory (an unpacked archive), and last the build tree's library directory,
//! so that `target/release/minerva-setup` runs where it was built. `cargo test` and `cargo run`
//! also put the build tree on the loader's path.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_BACKENDS_DIR");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    // llama-cpp-sys-2 (`links = "llama"`) exports its backends directory; the libraries are in
    // `lib` beside it.
    let build_lib = std::env::var("DEP_LLAMA_BACKENDS_DIR")
        .ok()
        .and_then(|d| std::path::Path::new(&d).parent().map(|p| p.join("lib")))
        .filter(|d| d.is_dir());
    match os.as_str() {
        "linux" | "freebsd" | "netbsd" | "openbsd" | "dragonfly" => {
            let mut rpath = String::from("$ORIGIN/../lib/minerva-setup:$ORIGIN");
            if let Some(d) = &build_lib {
                rpath.push(':');
                rpath.push_str(&d.display().to_string());
            }
            println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{rpath}");
            // The examples (the accuracy and llama.cpp comparison benches) run from
            // target/<profile>/examples without cargo's loader path too.
            println!("cargo:rustc-link-arg-examples=-Wl,-rpath,{rpath}");
        }
        "macos" => {
            println!("cargo:rustc-link-arg-bins=-Wl,-rpath,@executable_path/../lib/minerva-setup");
            println!("cargo:rustc-link-arg-bins=-Wl,-rpath,@executable_path");
            if let Some(d) = &build_lib {
                println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{}", d.display());
            }
        }
        _ => {}
    }
}
