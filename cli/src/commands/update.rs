//! `berth update`: new resource limits and restart policy for one or more
//! containers (`POST /containers/{id}/update`), docker's flags and output:
//! each container's name as it was given, then the daemon's warnings.

use serde_json::{Map, Value, json};

use crate::Ctx;
use crate::cli::UpdateArgs;
use crate::commands::container::{for_each, path_of, ram_in_bytes, restart_policy};
use crate::error::Error;
use crate::output::println;

/// `--cpus 1.5` as nano CPUs; docker refuses more than nine decimals.
fn nano_cpus(text: &str) -> Result<i64, Error> {
    let invalid = || Error::Usage(format!("invalid argument {text:?} for \"--cpus\" flag"));
    let cpus: f64 = text.trim().parse().map_err(|_| invalid())?;
    let nano = cpus * 1e9;
    if !nano.is_finite() || (nano - nano.round()).abs() > 1e-3 {
        return Err(invalid());
    }
    Ok(nano.round() as i64)
}

/// `--memory-swap`: a size, or -1 for unlimited swap.
fn swap_bytes(text: &str) -> Result<i64, Error> {
    if text.trim() == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(text)
}

/// The `UpdateConfig` body: only the flags given (docker sends zero for the
/// others, which the daemon reads as "unchanged").
fn update_body(a: &UpdateArgs) -> Result<Value, Error> {
    let mut body = Map::new();
    let mut set = |key: &str, value: Value| {
        body.insert(key.to_owned(), value);
    };
    if let Some(v) = a.blkio_weight {
        set("BlkioWeight", json!(v));
    }
    if let Some(v) = a.cpu_period {
        set("CpuPeriod", json!(v));
    }
    if let Some(v) = a.cpu_quota {
        set("CpuQuota", json!(v));
    }
    if let Some(v) = a.cpu_rt_period {
        set("CpuRealtimePeriod", json!(v));
    }
    if let Some(v) = a.cpu_rt_runtime {
        set("CpuRealtimeRuntime", json!(v));
    }
    if let Some(v) = a.cpu_shares {
        set("CpuShares", json!(v));
    }
    if let Some(v) = &a.cpus {
        set("NanoCpus", json!(nano_cpus(v)?));
    }
    if let Some(v) = &a.cpuset_cpus {
        set("CpusetCpus", json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        set("CpusetMems", json!(v));
    }
    if let Some(v) = &a.memory {
        set("Memory", json!(ram_in_bytes(v)?));
    }
    if let Some(v) = &a.memory_reservation {
        set("MemoryReservation", json!(ram_in_bytes(v)?));
    }
    if let Some(v) = &a.memory_swap {
        set("MemorySwap", json!(swap_bytes(v)?));
    }
    if let Some(v) = a.pids_limit {
        set("PidsLimit", json!(v));
    }
    if let Some(v) = &a.restart {
        set("RestartPolicy", restart_policy(v)?);
    }
    if body.is_empty() {
        return Err(Error::Usage(
            "you must provide one or more flags when using this command".to_owned(),
        ));
    }
    Ok(Value::Object(body))
}

pub(crate) fn update(ctx: &mut Ctx, a: UpdateArgs) -> Result<(), Error> {
    // A flag mistake is docker's status 1 for this command, like a refusal.
    let body = update_body(&a).map_err(|e| {
        eprintln!("berth: {e}");
        Error::Exit(1)
    })?;
    let mut warnings = Vec::new();
    let result = for_each(ctx, &a.containers, |ctx, c| {
        let answer = ctx
            .client
            .post_json(&format!("{}/update", path_of(c)), &body)?;
        let listed = answer["Warnings"].as_array().into_iter().flatten();
        warnings.extend(listed.filter_map(|w| w.as_str().map(str::to_owned)));
        Ok(Some(c.to_string()))
    });
    for warning in warnings {
        println(&warning)?;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn body(args: &[&str]) -> Result<Value, Error> {
        #[derive(Debug, Parser)]
        struct Wrap {
            #[command(flatten)]
            a: UpdateArgs,
        }
        let mut argv = vec!["update"];
        argv.extend_from_slice(args);
        update_body(&Wrap::parse_from(argv).a)
    }

    #[test]
    fn flags_become_dockers_update_config() {
        let b = body(&[
            "-m",
            "64m",
            "--memory-swap",
            "-1",
            "--cpus",
            "0.5",
            "--pids-limit",
            "-1",
            "-c",
            "512",
            "--restart",
            "on-failure:3",
            "c1",
        ])
        .unwrap();
        assert_eq!(
            b,
            json!({"Memory": 67108864, "MemorySwap": -1, "NanoCpus": 500_000_000,
                   "PidsLimit": -1, "CpuShares": 512,
                   "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}})
        );
    }

    #[test]
    fn no_flags_and_bad_values_are_refused() {
        assert_eq!(
            body(&["c1"]).unwrap_err().to_string(),
            "you must provide one or more flags when using this command"
        );
        assert!(body(&["--cpus", "0.0000000001", "c1"]).is_err());
        assert!(body(&["--memory", "lots", "c1"]).is_err());
        assert!(body(&["--restart", "sometimes", "c1"]).is_err());
    }
}
