//! `berth-shim`: see the library's documentation and README.md.

fn main() {
    berth_shim::server::main()
}
