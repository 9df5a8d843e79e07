//! `volume create|ls|rm|prune` (inspect is shared with networks).

use serde_json::{Value, json};

use crate::Ctx;
use crate::cli::{VolumeCreateArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs};
use crate::client::{Query, encode_path};
use crate::commands::network::key_values;
use crate::error::Error;
use crate::output::{filters_json, print, println};
use crate::template::{ListFormat, row};
use crate::units::human_size_prec;

pub(crate) fn create(ctx: &mut Ctx, a: VolumeCreateArgs) -> Result<(), Error> {
    let body = json!({
        "Driver": a.driver,
        "DriverOpts": key_values(&a.opt),
        "Labels": key_values(&a.label),
        "Name": a.name.clone().unwrap_or_default(),
    });
    let v = ctx.client.post_json("/volumes/create", &body)?;
    println(v["Name"].as_str().unwrap_or(""))
}

pub(crate) fn ls(ctx: &mut Ctx, a: VolumeLsArgs) -> Result<(), Error> {
    let mut q = Query::new();
    if let Some(f) = filters_json(&a.filter)? {
        q = q.add("filters", f);
    }
    let list = ctx.client.get_json(&format!("/volumes{}", q.render()))?;
    let mut vols = list["Volumes"].as_array().cloned().unwrap_or_default();
    vols.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    for w in list["Warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        eprintln!("{w}");
    }
    let rows: Vec<Value> = vols
        .iter()
        .map(|v| {
            let labels: Vec<String> = v["Labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default();
            row(vec![
                ("Driver", v["Driver"].clone()),
                ("Labels", json!(labels.join(","))),
                ("Mountpoint", v["Mountpoint"].clone()),
                ("Name", v["Name"].clone()),
                ("Scope", v["Scope"].clone()),
                ("Size", json!("N/A")),
            ])
        })
        .collect();
    let format = if a.quiet {
        Some("{{.Name}}")
    } else {
        a.format.as_deref()
    };
    let f = ListFormat::parse(format, "{{.Driver}}\t{{.Name}}")?;
    let titles = [
        ("Driver", "DRIVER"),
        ("Name", "VOLUME NAME"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Scope", "SCOPE"),
        ("Labels", "LABELS"),
        ("Size", "SIZE"),
    ];
    print(&f.render(&rows, &titles)?)
}

pub(crate) fn rm(ctx: &mut Ctx, a: VolumeRmArgs) -> Result<(), Error> {
    let q = Query::new().add_if(a.force, "force", "1").render();
    let mut failed = false;
    for n in &a.names {
        match ctx
            .client
            .call("DELETE", &format!("/volumes/{}{q}", encode_path(n)))
        {
            Ok(_) => println(n)?,
            Err(e) if e.is_daemon_error() => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
            Err(e) => return Err(e),
        }
    }
    if failed { Err(Error::Exit(1)) } else { Ok(()) }
}

/// `volume prune`: anonymous volumes no container uses (all unused ones
/// with `-a`), as docker prints it.
pub(crate) fn prune(ctx: &mut Ctx, a: VolumePruneArgs) -> Result<(), Error> {
    if !a.force {
        let what = if a.all {
            "all local volumes"
        } else {
            "anonymous local volumes"
        };
        // on stdout, as docker's prompt
        print(&format!(
            "WARNING! This will remove {what} not used by at least one container.\nAre you sure you want to continue? [y/N] "
        ))?;
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let mut filters: serde_json::Map<String, Value> = filters_json(&a.filter)?
        .and_then(|f| serde_json::from_str(&f).ok())
        .unwrap_or_default();
    if a.all {
        filters.insert("all".into(), json!({"true": true}));
    }
    let q = if filters.is_empty() {
        String::new()
    } else {
        Query::new()
            .add("filters", Value::Object(filters).to_string())
            .render()
    };
    let v = ctx.client.post_empty(&format!("/volumes/prune{q}"))?;
    let deleted: Vec<&str> = v["VolumesDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !deleted.is_empty() {
        println(&format!("Deleted Volumes:\n{}\n", deleted.join("\n")))?;
    }
    let reclaimed = v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    println(&format!(
        "Total reclaimed space: {}",
        human_size_prec(reclaimed, 4)
    ))
}
