//! The `minerva-setup` binary: parse, run, render the error, exit. Everything else is in the library.

fn main() {
    std::process::exit(minerva_setup::cli::main_exit_code());
}
