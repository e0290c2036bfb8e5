//! The `bss-host` command.

fn main() {
    println!("bss-host {}", env!("CARGO_PKG_VERSION"));
}
