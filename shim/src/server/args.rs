//! The shim's command line (no clap: a handful of flags set by berthd).

use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Default)]
pub(super) struct Args {
    pub(super) bundle: PathBuf,
    pub(super) id: String,
    pub(super) state_dir: PathBuf,
    pub(super) runtime_root: Option<PathBuf>,
    pub(super) log_path: Option<PathBuf>,
    pub(super) log_max_size: u64,
    pub(super) log_max_files: u32,
    pub(super) tty: bool,
    pub(super) stdin: bool,
}

impl Args {
    pub(super) fn parse(mut it: impl Iterator<Item = OsString>) -> Result<Args, String> {
        let mut a = Args {
            log_max_files: 1,
            ..Args::default()
        };
        while let Some(flag) = it.next() {
            let flag = flag.to_string_lossy().into_owned();
            if flag == "--tty" {
                a.tty = true;
                continue;
            }
            if flag == "--stdin" {
                a.stdin = true;
                continue;
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |v: &OsString| {
                v.to_string_lossy()
                    .parse::<u64>()
                    .map_err(|_| format!("{flag}: not a number: {v:?}"))
            };
            match flag.as_str() {
                "--bundle" => a.bundle = value.into(),
                "--id" => a.id = value.to_string_lossy().into_owned(),
                "--state-dir" => a.state_dir = value.into(),
                "--runtime-root" => a.runtime_root = Some(value.into()),
                "--log-path" => a.log_path = Some(value.into()),
                "--log-max-size" => a.log_max_size = number(&value)?,
                "--log-max-files" => a.log_max_files = number(&value)? as u32,
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        if a.bundle.as_os_str().is_empty() || a.id.is_empty() || a.state_dir.as_os_str().is_empty()
        {
            return Err("--bundle, --id and --state-dir are required".into());
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_args() {
        let a = Args::parse(
            [
                "--bundle",
                "/b",
                "--id",
                "c1",
                "--state-dir",
                "/s",
                "--tty",
                "--log-max-size",
                "100",
            ]
            .into_iter()
            .map(OsString::from),
        )
        .unwrap();
        assert_eq!(a.bundle, PathBuf::from("/b"));
        assert!(a.tty && !a.stdin);
        assert_eq!(a.log_max_size, 100);
        assert!(Args::parse(["--id", "x"].into_iter().map(OsString::from)).is_err());
        assert!(Args::parse(["--bogus", "x"].into_iter().map(OsString::from)).is_err());
    }
}
