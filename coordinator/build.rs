//! Compiles KEDA's external scaler proto (feature `keda`) in pure Rust: protox parses the
//! file, so no `protoc` binary is needed at build time.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "keda")]
    {
        println!("cargo:rerun-if-changed=proto/externalscaler.proto");
        let fds = protox::compile(["externalscaler.proto"], ["proto"])?;
        tonic_prost_build::configure()
            .build_client(true)
            .build_server(true)
            .compile_fds(fds)?;
    }
    Ok(())
}
