//! `berth man DIR`: man pages from the clap definitions, one per (sub)command.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::Error;

pub(crate) fn write_all(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(Error::Output)?;
    let mut cmd = Cli::command();
    cmd.build();
    write_one(dir, &cmd, "berth")
}

fn write_one(dir: &Path, cmd: &clap::Command, name: &str) -> Result<(), Error> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(name.to_string())
        .render(&mut buf)
        .map_err(Error::Output)?;
    std::fs::write(dir.join(format!("{name}.1")), buf).map_err(Error::Output)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_one(dir, sub, &format!("{name}-{}", sub.get_name()))?;
    }
    Ok(())
}
