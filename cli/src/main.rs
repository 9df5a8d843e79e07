//! `berth`: a docker-compatible CLI, a thin client of the Docker Engine API served by berthd (or
//! any Docker-API daemon).
//!
//! Startup does only what the command needs: parsing the arguments of the one subcommand that
//! runs (the others are deferred), then the API calls, without a version ping (see
//! `client.rs`). No async runtime.

mod attached;
mod auth;
mod cli;
mod client;
mod commands;
mod error;
mod output;
mod progress;
mod reference;
mod signals;
mod stdcopy;
mod template;
mod units;

use std::io::Write;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};

use crate::cli::{
    Cli, Command, ContainerCommand, ImageCommand, NetworkCommand, SystemCommand, VolumeCommand,
};
use crate::client::{Client, DEFAULT_HOST, Host};
use crate::error::Error;

/// What every command gets: the API client (not yet connected) and the docker config dir.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) client: Client,
    pub(crate) config_dir: PathBuf,
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => std::process::exit(usage_error(e)),
    };
    let code = match run(cli) {
        Ok(()) => 0,
        Err(e) => report(&e),
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// Prints the error as one line (docker's wording where it has one) and returns the exit status.
fn report(e: &Error) -> i32 {
    match e {
        Error::Exit(code) => *code,
        Error::Output(io) if io.kind() == std::io::ErrorKind::BrokenPipe => 0,
        e if e.is_daemon_error() => {
            eprintln!("Error response from daemon: {e}");
            e.exit_code()
        }
        Error::NoSuchObject(_) | Error::InStream(_) | Error::Connect { .. } | Error::Detached => {
            eprintln!("{e}");
            e.exit_code()
        }
        e => {
            eprintln!("berth: {e}");
            e.exit_code()
        }
    }
}

/// Command-line mistakes: one line, exit 125 (docker's status for flag errors). Help and
/// `--version` requests print normally and exit 0.
fn usage_error(e: clap::Error) -> i32 {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return 0;
        }
        _ => {}
    }
    let usage = match e.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(s)) => s.to_string(),
        _ => String::new(),
    };
    // "Usage: berth ps [OPTIONS]" -> "berth ps"
    let command: Vec<&str> = usage
        .split_whitespace()
        .skip_while(|w| w.ends_with(':'))
        .take_while(|w| {
            !w.starts_with(['[', '<', '-'])
                && !w.chars().all(|c| c.is_uppercase() || c == '_' || c == '.')
        })
        .collect();
    let command = if command.is_empty() {
        "berth".to_string()
    } else {
        command.join(" ")
    };
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(" "),
        _ => String::new(),
    };
    let rendered = e.to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_string();
    let what = match e.kind() {
        ErrorKind::UnknownArgument if arg.starts_with('-') => {
            format!("unknown flag: {}", arg.split('=').next().unwrap_or(&arg))
        }
        ErrorKind::MissingRequiredArgument => {
            format!("\"{command}\" requires at least 1 argument ({arg})")
        }
        ErrorKind::InvalidSubcommand => match e.get(ContextKind::InvalidSubcommand) {
            Some(ContextValue::String(s)) => format!("'{s}' is not a berth command"),
            _ => first,
        },
        _ => first,
    };
    eprintln!("berth: {what}. See '{command} --help'.");
    125
}

fn host_address(flag: Option<&str>) -> String {
    flag.map(str::to_string)
        .or_else(|| std::env::var("BERTH_HOST").ok().filter(|h| !h.is_empty()))
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

fn run(cli: Cli) -> Result<(), Error> {
    let host = Host::parse(&host_address(cli.host.as_deref()))?;
    let mut ctx = Ctx {
        client: Client::new(host),
        config_dir: auth::config_dir(cli.config.as_deref()),
    };
    if cli.version {
        println!(
            "Berth version {}, build {}",
            env!("CARGO_PKG_VERSION"),
            option_env!("BERTH_GIT_COMMIT").unwrap_or("dev")
        );
        return Ok(());
    }
    let Some(command) = cli.command else {
        let _ = Cli::command().print_help();
        return Ok(());
    };
    use commands::{container as c, image as i, system as s};
    match command {
        Command::Run(a) => c::run(&mut ctx, a),
        Command::Create(a) => c::create_cmd(&mut ctx, a),
        Command::Start(a) => c::start(&mut ctx, a),
        Command::Stop(a) => c::stop(&mut ctx, a, "stop"),
        Command::Restart(a) => c::stop(&mut ctx, a, "restart"),
        Command::Kill(a) => c::kill(&mut ctx, a),
        Command::Rm(a) => c::rm(&mut ctx, a),
        Command::Ps(a) => c::ps(&mut ctx, a),
        Command::Logs(a) => c::logs(&mut ctx, a),
        Command::Exec(a) => c::exec(&mut ctx, a),
        Command::Attach(a) => c::attach(&mut ctx, a),
        Command::Inspect(a) => s::inspect(&mut ctx, a, None),
        Command::Wait(a) => c::wait(&mut ctx, a),
        Command::Top(a) => c::top(&mut ctx, a),
        Command::Stats(a) => commands::stats::stats(&mut ctx, a),
        Command::Cp(a) => commands::cp::cp(&mut ctx, a),
        Command::Export(a) => commands::files::export(&mut ctx, a),
        Command::Diff(a) => commands::files::diff(&mut ctx, a),
        Command::Commit(a) => commands::files::commit(&mut ctx, a),
        Command::Rename(a) => c::rename(&mut ctx, a),
        Command::Update(a) => commands::update::update(&mut ctx, a),
        Command::Port(a) => c::port(&mut ctx, a),
        Command::Pause(a) => c::simple_post(&mut ctx, a, "pause"),
        Command::Unpause(a) => c::simple_post(&mut ctx, a, "unpause"),
        Command::Pull(a) => i::pull(&mut ctx, a),
        Command::Push(a) => i::push(&mut ctx, a),
        Command::Images(a) => i::images(&mut ctx, a),
        Command::Rmi(a) => i::rmi(&mut ctx, a),
        Command::Tag(a) => i::tag(&mut ctx, a),
        Command::Version(a) => s::version(&mut ctx, a),
        Command::Info(a) => s::info(&mut ctx, a),
        Command::Events(a) => s::events(&mut ctx, a),
        Command::System(SystemCommand::Df(a)) => s::df(&mut ctx, a),
        Command::System(SystemCommand::Info(a)) => s::info(&mut ctx, a),
        Command::System(SystemCommand::Events(a)) => s::events(&mut ctx, a),
        Command::Container(cc) => match cc {
            ContainerCommand::Ls(a) => c::ps(&mut ctx, a),
            ContainerCommand::Run(a) => c::run(&mut ctx, a),
            ContainerCommand::Create(a) => c::create_cmd(&mut ctx, a),
            ContainerCommand::Start(a) => c::start(&mut ctx, a),
            ContainerCommand::Stop(a) => c::stop(&mut ctx, a, "stop"),
            ContainerCommand::Restart(a) => c::stop(&mut ctx, a, "restart"),
            ContainerCommand::Kill(a) => c::kill(&mut ctx, a),
            ContainerCommand::Rm(a) => c::rm(&mut ctx, a),
            ContainerCommand::Logs(a) => c::logs(&mut ctx, a),
            ContainerCommand::Exec(a) => c::exec(&mut ctx, a),
            ContainerCommand::Attach(a) => c::attach(&mut ctx, a),
            ContainerCommand::Inspect(a) => s::inspect(&mut ctx, a, Some("container")),
            ContainerCommand::Wait(a) => c::wait(&mut ctx, a),
            ContainerCommand::Top(a) => c::top(&mut ctx, a),
            ContainerCommand::Stats(a) => commands::stats::stats(&mut ctx, a),
            ContainerCommand::Cp(a) => commands::cp::cp(&mut ctx, a),
            ContainerCommand::Export(a) => commands::files::export(&mut ctx, a),
            ContainerCommand::Diff(a) => commands::files::diff(&mut ctx, a),
            ContainerCommand::Commit(a) => commands::files::commit(&mut ctx, a),
            ContainerCommand::Rename(a) => c::rename(&mut ctx, a),
            ContainerCommand::Update(a) => commands::update::update(&mut ctx, a),
            ContainerCommand::Port(a) => c::port(&mut ctx, a),
            ContainerCommand::Pause(a) => c::simple_post(&mut ctx, a, "pause"),
            ContainerCommand::Unpause(a) => c::simple_post(&mut ctx, a, "unpause"),
        },
        Command::Image(ic) => match ic {
            ImageCommand::Ls(a) => i::images(&mut ctx, a),
            ImageCommand::Pull(a) => i::pull(&mut ctx, a),
            ImageCommand::Push(a) => i::push(&mut ctx, a),
            ImageCommand::Rm(a) => i::rmi(&mut ctx, a),
            ImageCommand::Tag(a) => i::tag(&mut ctx, a),
            ImageCommand::Inspect(a) => s::inspect(&mut ctx, a, Some("image")),
            ImageCommand::History(a) => i::history(&mut ctx, a),
            ImageCommand::Build(a) => commands::build::build(&mut ctx, a),
            ImageCommand::Save(a) => i::save(&mut ctx, a),
            ImageCommand::Load(a) => i::load(&mut ctx, a),
            ImageCommand::Import(a) => i::import(&mut ctx, a),
        },
        Command::History(a) => i::history(&mut ctx, a),
        Command::Build(a) => commands::build::build(&mut ctx, a),
        Command::Save(a) => i::save(&mut ctx, a),
        Command::Load(a) => i::load(&mut ctx, a),
        Command::Import(a) => i::import(&mut ctx, a),
        Command::System(SystemCommand::Prune(a)) => s::prune(&mut ctx, a),
        Command::Login(a) => commands::login::login(&mut ctx, a),
        Command::Logout(a) => commands::login::logout(&mut ctx, a),
        Command::Network(nc) => match nc {
            NetworkCommand::Create(a) => commands::network::create(&mut ctx, a),
            NetworkCommand::Ls(a) => commands::network::ls(&mut ctx, a),
            NetworkCommand::Rm(a) => commands::network::rm(&mut ctx, a),
            NetworkCommand::Inspect(a) => commands::network::inspect(&mut ctx, a, "network"),
            NetworkCommand::Connect(a) => commands::network::connect(&mut ctx, a),
            NetworkCommand::Disconnect(a) => commands::network::disconnect(&mut ctx, a),
        },
        Command::Volume(vc) => match vc {
            VolumeCommand::Create(a) => commands::volume::create(&mut ctx, a),
            VolumeCommand::Ls(a) => commands::volume::ls(&mut ctx, a),
            VolumeCommand::Rm(a) => commands::volume::rm(&mut ctx, a),
            VolumeCommand::Inspect(a) => commands::network::inspect(&mut ctx, a, "volume"),
            VolumeCommand::Prune(a) => commands::volume::prune(&mut ctx, a),
        },
        Command::Completion(a) => {
            let mut cmd = Cli::command();
            clap_complete::generate(a.shell, &mut cmd, "berth", &mut std::io::stdout());
            Ok(())
        }
        Command::Man(a) => commands::man::write_all(&a.dir),
    }
}
