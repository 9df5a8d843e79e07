//! `docker stats`: one `GET /containers/{id}/stats?stream=0` per container per refresh (the
//! daemon takes the CPU pre-sample), rendered with docker's columns and arithmetic.
//! Streaming mode redraws the table about once a second instead of keeping one
//! `stream=1` connection per container as docker does.

use std::io::IsTerminal;

use serde_json::{Value, json};

use crate::Ctx;
use crate::cli::StatsArgs;
use crate::client::{Query, encode_path};
use crate::error::Error;
use crate::output::{print, short_id};
use crate::template::{ListFormat, row};
use crate::units::{bytes_size, human_size};

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// CPU % = Δcontainer / Δsystem × online CPUs × 100, memory without the page cache, as docker.
/// `given` is the container as named on the command line, docker's `.Container`.
fn stats_row(s: &Value, given: Option<&str>, no_trunc: bool) -> Value {
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta = f(&cpu["cpu_usage"]["total_usage"]) - f(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = f(&cpu["system_cpu_usage"]) - f(&pre["system_cpu_usage"]);
    let online = match cpu["online_cpus"].as_f64() {
        Some(n) if n > 0.0 => n,
        _ => cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map(|a| a.len() as f64)
            .unwrap_or(1.0),
    };
    let cpu_pct = if cpu_delta > 0.0 && sys_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    let cache = mem["stats"]["inactive_file"]
        .as_f64()
        .or(mem["stats"]["total_inactive_file"].as_f64())
        .unwrap_or(0.0);
    let used = (f(&mem["usage"]) - cache).max(0.0);
    let limit = f(&mem["limit"]);
    let mem_pct = if limit > 0.0 {
        used / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        rx += f(&n["rx_bytes"]);
        tx += f(&n["tx_bytes"]);
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => rd += f(&e["value"]),
            Some("write") => wr += f(&e["value"]),
            _ => {}
        }
    }
    let id = s["id"].as_str().unwrap_or("");
    let name = s["name"].as_str().unwrap_or("");
    row(vec![
        (
            "BlockIO",
            json!(format!("{} / {}", human_size(rd), human_size(wr))),
        ),
        ("CPUPerc", json!(format!("{cpu_pct:.2}%"))),
        (
            "Container",
            json!(match given {
                Some(given) => given.to_string(),
                None if no_trunc => id.to_string(),
                None => short_id(id),
            }),
        ),
        (
            "ID",
            json!(if no_trunc {
                id.to_string()
            } else {
                short_id(id)
            }),
        ),
        ("MemPerc", json!(format!("{mem_pct:.2}%"))),
        (
            "MemUsage",
            json!(format!("{} / {}", bytes_size(used), bytes_size(limit))),
        ),
        ("Name", json!(name.strip_prefix('/').unwrap_or(name))),
        (
            "NetIO",
            json!(format!("{} / {}", human_size(rx), human_size(tx))),
        ),
        (
            "PIDs",
            json!(s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string()),
        ),
    ])
}

pub(crate) fn stats(ctx: &mut Ctx, a: StatsArgs) -> Result<(), Error> {
    let fmt = ListFormat::parse(
        a.format.as_deref(),
        "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
    )?;
    let titles = [
        ("ID", "CONTAINER ID"),
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ];
    let tty = std::io::stdout().is_terminal();
    loop {
        let targets: Vec<String> = if a.containers.is_empty() {
            let q = Query::new().add_if(a.all, "all", "1").render();
            let list = ctx.client.get_json(&format!("/containers/json{q}"))?;
            list.as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["Id"].as_str().map(str::to_string))
                .collect()
        } else {
            a.containers.clone()
        };
        // one request per container, concurrently: each takes the daemon's ~1 s CPU pre-sample
        let results: Vec<Result<Value, Error>> = std::thread::scope(|scope| {
            let handles: Vec<_> = targets
                .iter()
                .map(|c| {
                    let mut client = ctx.client.clone();
                    scope.spawn(move || {
                        client.get_json(&format!("/containers/{}/stats?stream=0", encode_path(c)))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Usage("stats thread panicked".into())))
                })
                .collect()
        });
        let mut rows = Vec::new();
        for (r, target) in results.into_iter().zip(&targets) {
            let given = (!a.containers.is_empty()).then_some(target.as_str());
            rows.push(stats_row(&r?, given, a.no_trunc));
        }
        let table = fmt.render(&rows, &titles)?;
        if a.no_stream {
            return print(&table);
        }
        // clear and redraw in a terminal, append otherwise (docker does the same)
        print(&if tty {
            format!("\x1b[2J\x1b[H{table}")
        } else {
            table
        })?;
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}
