//! Generates the double's gRPC server stubs from the `.proto` files shipped inside the `kurrentdb`
//! client package, so the double speaks exactly the protocol the client was built from, and
//! nothing upstream is copied into this repository.
//!
//! The package is found through `cargo metadata` (the same resolution the build uses), restricted
//! to the target platform so that no crate for another platform has to be fetched. The protos are
//! compiled by `protox` (pure Rust, no `protoc` binary) and turned into tonic server code with the
//! same prost/tonic major versions the client links against.

use std::env;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The files of the services the double serves; what they import is found beside them.
const PROTOS: [&str; 4] = [
    "streams.proto",
    "serverfeatures.proto",
    "projections.proto",
    "gossip.proto",
];

/// Overrides the location of the protos (a directory), for builds where `cargo metadata` cannot run.
const PROTO_DIR_OVERRIDE: &str = "ESDB_DOUBLE_PROTO_DIR";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={PROTO_DIR_OVERRIDE}");

    let proto_dir = match env::var_os(PROTO_DIR_OVERRIDE) {
        Some(dir) => PathBuf::from(dir),
        None => kurrentdb_package_dir()?.join("protos"),
    };
    let files: Vec<PathBuf> = PROTOS.iter().map(|f| proto_dir.join(f)).collect();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let descriptors = protox::compile(&files, [&proto_dir])?;

    tonic_build::configure()
        .build_client(false)
        .build_server(true)
        .build_transport(false)
        .emit_rerun_if_changed(false)
        .extern_path(".event_store.client.Empty", "()")
        .bytes(["."])
        .include_file("esdb_protos.rs")
        .compile_fds(descriptors)?;
    Ok(())
}

/// The directory of the `kurrentdb` 1.x package this workspace resolves to.
fn kurrentdb_package_dir() -> Result<PathBuf, Box<dyn Error>> {
    // Offline first: the package is normally downloaded already, and this avoids the network.
    let metadata = match cargo_metadata(true) {
        Ok(metadata) => metadata,
        Err(_) => cargo_metadata(false)?,
    };
    if let Some(root) = metadata["workspace_root"].as_str() {
        // A change of the resolved kurrentdb version shows in the lock file.
        println!(
            "cargo:rerun-if-changed={}",
            Path::new(root).join("Cargo.lock").display()
        );
    }
    let packages = metadata["packages"]
        .as_array()
        .ok_or("no packages in cargo metadata")?;
    let manifest_path = packages
        .iter()
        .filter(|p| p["name"] == "kurrentdb")
        .filter(|p| p["version"].as_str().is_some_and(|v| v.starts_with("1.")))
        .find_map(|p| p["manifest_path"].as_str())
        .ok_or("the kurrentdb 1.x package is not in the dependency graph")?;
    let dir = Path::new(manifest_path)
        .parent()
        .ok_or("kurrentdb manifest path has no parent")?;
    Ok(dir.to_path_buf())
}

/// `cargo metadata` for this package's workspace, restricted to the target platform so that no
/// crate for another platform has to be fetched.
fn cargo_metadata(offline: bool) -> Result<serde_json::Value, Box<dyn Error>> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(&env::var("CARGO_MANIFEST_DIR")?).join("Cargo.toml");
    let target = env::var("TARGET")?;
    let mut command = Command::new(cargo);
    command
        .args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            &target,
        ])
        .arg("--manifest-path")
        .arg(&manifest);
    if offline {
        command.arg("--offline");
    }
    let output = command.output()?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed (set {PROTO_DIR_OVERRIDE} to the kurrentdb protos directory): {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}
