//! The `berthd` binary: parse flags and config, then serve until SIGTERM/SIGINT.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Multi-call: invoked as `berth-shim` (a link to berthd), act as the
    // per-container supervisor. Used where no separate berth-shim binary
    // is installed (the daemon's tests).
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if std::path::Path::new(&argv0).file_name() == Some(std::ffi::OsStr::new("berth-shim")) {
        berth_shim::server::main();
    }
    let args = berth_daemon::Args::parse();
    let config = match berth_daemon::Config::load(args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("berthd: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("berthd: starting the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(berth_daemon::run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("berthd: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
