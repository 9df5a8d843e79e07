//! Links `berth-shim` as a non-PIE executable. A PIE's `.data.rel.ro`
//! (~250 KiB of vtables and tables here) is rewritten by the dynamic
//! loader at every start, which makes it private memory in each of the
//! hundreds of shims; a non-PIE executable has those pointers fixed at
//! link time, so the pages stay shared with the file. Shared libraries,
//! stack and heap are still randomized.

fn main() {
    println!("cargo:rustc-link-arg-bin=berth-shim=-no-pie");
}
