//! Relinks the agent when its code layout changes: `link/order-link.sh` (the workspace's
//! linker driver) lays out the functions listed in `link/hot-functions.txt` first.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/hot-functions.txt");
    println!("cargo:rerun-if-changed=link/order-link.sh");
}
