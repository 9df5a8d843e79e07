//! The `berthd` binary: parse flags and config, then serve until SIGTERM/SIGINT.

use clap::Parser;

fn main() -> std::process::ExitCode {
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
