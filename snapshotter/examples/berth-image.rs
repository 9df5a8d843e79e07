//! `berth-image`: the image pipeline without a daemon, for benchmarks and
//! debugging. Uses the data-root layout berthd uses (`content/`,
//! `metadata.redb`, `overlay/`).
//!
//! ```text
//! berth-image --root DIR pull REF [--platform OS/ARCH[/VARIANT]]
//! berth-image --root DIR push SOURCE TARGET
//! berth-image --root DIR images
//! berth-image --root DIR fsck
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use berth_core::{
    ContentStore, MetadataStore, Platform, Reference, RegistryClient, RegistryConfig,
};
use berth_snapshotter::OverlaySnapshotter;
use berth_snapshotter::pull::{self, Progress, PullTarget};

const USAGE: &str =
    "usage: berth-image --root DIR (pull REF [--platform P] | push SOURCE TARGET | images | fsck)";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-image: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let (root, rest) = match args.as_slice() {
        [flag, root, rest @ ..] if flag == "--root" => (PathBuf::from(root), rest),
        _ => return Err(USAGE.into()),
    };
    let content = Arc::new(ContentStore::open(root.join("content")).map_err(|e| e.to_string())?);
    let metadata = Arc::new(MetadataStore::open(&root).map_err(|e| e.to_string())?);
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    match rest {
        [cmd, reference, more @ ..] if cmd == "pull" => {
            let platform = match more {
                [] => Platform::default(),
                [flag, p] if flag == "--platform" => {
                    Platform::parse(p).ok_or_else(|| format!("invalid platform {p:?}"))?
                }
                _ => return Err(USAGE.into()),
            };
            let reference = Reference::parse(reference).map_err(|e| e.to_string())?;
            let snapshots = Arc::new(
                OverlaySnapshotter::open(root.join("overlay")).map_err(|e| e.to_string())?,
            );
            let target = PullTarget {
                content,
                metadata,
                snapshots,
            };
            let client =
                RegistryClient::new(RegistryConfig::default()).map_err(|e| e.to_string())?;
            let report = |p: Progress| match p {
                Progress::PullComplete(d) => eprintln!("{}: pull complete", &d.hex()[..12]),
                Progress::AlreadyExists(d) => eprintln!("{}: already exists", &d.hex()[..12]),
                _ => {}
            };
            let image = runtime
                .block_on(pull::pull(&client, &target, &reference, &platform, &report))
                .map_err(|e| e.to_string())?;
            println!("{} {}", reference, image.target.digest);
            Ok(())
        }
        [cmd, source, dest] if cmd == "push" => {
            let image = metadata.resolve(source).map_err(|e| e.to_string())?;
            let dest = Reference::parse(dest).map_err(|e| e.to_string())?;
            let client =
                RegistryClient::new(RegistryConfig::default()).map_err(|e| e.to_string())?;
            let digest = runtime
                .block_on(client.push_image(&content, &image.target.digest, &dest, None))
                .map_err(|e| e.to_string())?;
            println!("{dest} {digest}");
            Ok(())
        }
        [cmd] if cmd == "images" => {
            for (reference, digest) in metadata.references().map_err(|e| e.to_string())? {
                println!("{reference} {digest}");
            }
            Ok(())
        }
        [cmd] if cmd == "fsck" => {
            let problems = content.fsck().map_err(|e| e.to_string())?;
            for p in &problems {
                println!("{p}");
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(format!("{} problems", problems.len()))
            }
        }
        _ => Err(USAGE.into()),
    }
}
