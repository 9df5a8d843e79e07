//! `version`, `info`, `system df`, `events`, `inspect`.

use serde_json::{Value, json};

use crate::Ctx;
use crate::cli::{DfArgs, EventsArgs, FormatArgs, InspectArgs, PruneArgs};
use crate::client::{DEFAULT_API_VERSION, Payload, Query, encode_path};
use crate::commands::container::container_row;
use crate::error::Error;
use crate::output::short_id;
use crate::output::{filters_json, indent_json, print, println};
use crate::reference::familiar;
use crate::template::row;
use crate::template::{ListFormat, Template};
use crate::units::{
    api_timestamp, bytes_size, format_created_at, format_rfc3339_nano, human_duration, human_size,
    human_size_prec, now_unix, rfc3339_to_ansic,
};

fn client_version(negotiated: Option<&str>) -> Value {
    json!({
        "Platform": {"Name": "Berth"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": negotiated.unwrap_or(DEFAULT_API_VERSION),
        "DefaultAPIVersion": DEFAULT_API_VERSION,
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or("dev"),
        "GoVersion": "rust",
        "Os": "linux",
        "Arch": go_arch(),
        "BuildTime": "",
        "Context": "default",
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn version(ctx: &mut Ctx, a: FormatArgs) -> Result<(), Error> {
    let server = ctx
        .client
        .version()
        .and_then(|_| ctx.client.get_json("/version"));
    let negotiated = ctx.client.version().ok();
    let client = client_version(negotiated.as_deref());
    let server_value = server.as_ref().ok().cloned().unwrap_or(Value::Null);
    if let Some(f) = a.format.as_deref() {
        let t = Template::parse(if f == "json" { "{{json .}}" } else { f })?;
        println(&t.render(&json!({"Client": client, "Server": server_value}))?)?;
        return server.map(|_| ());
    }
    let api = match &negotiated {
        Some(v) if v != DEFAULT_API_VERSION && !ctx.client.is_pinned() => {
            format!("{v} (downgraded from {DEFAULT_API_VERSION})")
        }
        Some(v) => v.clone(),
        None => DEFAULT_API_VERSION.to_string(),
    };
    let mut out = format!(
        "Client:\n Version:           {}\n API version:       {api}\n Go version:        {}\n Git commit:        {}\n Built:             {}\n OS/Arch:           {}/{}\n Context:           {}\n",
        s(&client, "Version"),
        s(&client, "GoVersion"),
        s(&client, "GitCommit"),
        s(&client, "BuildTime"),
        s(&client, "Os"),
        s(&client, "Arch"),
        s(&client, "Context"),
    );
    print(&out)?;
    let sv = server?;
    out = format!(
        "\nServer: {}\n",
        sv["Platform"]["Name"].as_str().unwrap_or("")
    )
    .replace(" \n", "\n");
    let components = sv["Components"].as_array().cloned().unwrap_or_default();
    for c in components {
        let d = &c["Details"];
        let name = s(&c, "Name");
        if name == "Engine" {
            out.push_str(&format!(
                " Engine:\n  Version:          {}\n  API version:      {} (minimum version {})\n  Go version:       {}\n  Git commit:       {}\n  Built:            {}\n  OS/Arch:          {}/{}\n  Experimental:     {}\n",
                s(&c, "Version"),
                s(d, "ApiVersion"),
                s(d, "MinAPIVersion"),
                s(d, "GoVersion"),
                s(d, "GitCommit"),
                rfc3339_to_ansic(s(d, "BuildTime")),
                s(d, "Os"),
                s(d, "Arch"),
                s(d, "Experimental"),
            ));
        } else {
            out.push_str(&format!(
                " {name}:\n  Version:          {}\n",
                s(&c, "Version")
            ));
            if let Some(m) = d.as_object() {
                for (k, v) in m {
                    out.push_str(&format!(
                        "  {:<18}{}\n",
                        format!("{k}:"),
                        v.as_str().unwrap_or("")
                    ));
                }
            }
        }
    }
    print(&out)
}

pub(crate) fn info(ctx: &mut Ctx, a: FormatArgs) -> Result<(), Error> {
    let mut info = ctx.client.get_json("/info")?;
    if let Some(f) = a.format.as_deref() {
        info["ClientInfo"] = json!({"Debug": false, "Context": "default", "Plugins": []});
        let t = Template::parse(if f == "json" { "{{json .}}" } else { f })?;
        return println(&t.render(&info)?);
    }
    let n = |k: &str| info.get(k).map(|v| v.to_string()).unwrap_or_default();
    let mut out = String::from("Client:\n Version:    ");
    out.push_str(env!("CARGO_PKG_VERSION"));
    out.push_str("\n Context:    default\n Debug Mode: false\n\nServer:\n");
    out.push_str(&format!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n Server Version: {}\n Storage Driver: {}\n",
        n("Containers"),
        n("ContainersRunning"),
        n("ContainersPaused"),
        n("ContainersStopped"),
        n("Images"),
        s(&info, "ServerVersion"),
        s(&info, "Driver"),
    ));
    for pair in info["DriverStatus"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {}: {}\n",
            pair[0].as_str().unwrap_or(""),
            pair[1].as_str().unwrap_or("")
        ));
    }
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    out.push_str(&format!(
        " Logging Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}\n Plugins:\n",
        s(&info, "LoggingDriver"),
        s(&info, "CgroupDriver"),
        s(&info, "CgroupVersion")
    ));
    for kind in ["Volume", "Network", "Authorization", "Log"] {
        let p = strs(&info["Plugins"][kind]);
        if !p.is_empty() {
            out.push_str(&format!("  {kind}: {}\n", p.join(" ")));
        }
    }
    out.push_str(&format!(
        " Swarm: {}\n",
        info["Swarm"]["LocalNodeState"]
            .as_str()
            .unwrap_or("inactive")
    ));
    if let Some(rt) = info["Runtimes"].as_object() {
        let mut names: Vec<&String> = rt.keys().collect();
        // docker lists the default runtime first
        names.sort_by_key(|n| {
            (
                n.as_str() != s(&info, "DefaultRuntime"),
                n.len() > 4,
                (*n).clone(),
            )
        });
        out.push_str(&format!(
            " Runtimes: {}\n",
            names
                .iter()
                .map(|n| n.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    out.push_str(&format!(
        " Default Runtime: {}\n",
        s(&info, "DefaultRuntime")
    ));
    // berthd's own: the per-container supervisors (dockerd has none)
    if let Some(sup) = info["Supervisors"].as_object() {
        out.push_str(&format!(
            " Supervisors: {} running, {} standby (berth-shim, one per container)\n",
            sup.get("Running").and_then(Value::as_u64).unwrap_or(0),
            sup.get("Standby").and_then(Value::as_u64).unwrap_or(0),
        ));
    }
    out.push_str(&format!(
        " Init Binary: {}\n containerd version: {}\n runc version: {}\n init version: {}\n",
        s(&info, "InitBinary"),
        s(&info["ContainerdCommit"], "ID"),
        s(&info["RuncCommit"], "ID"),
        s(&info["InitCommit"], "ID"),
    ));
    let secopts = strs(&info["SecurityOptions"]);
    if !secopts.is_empty() {
        out.push_str(" Security Options:\n");
        for o in secopts {
            // "name=seccomp,profile=default" -> "  seccomp\n   Profile: default"
            for (i, kv) in o.split(',').enumerate() {
                let (k, v) = kv.split_once('=').unwrap_or(("", kv));
                if i == 0 {
                    out.push_str(&format!("  {v}\n"));
                } else {
                    let mut c = k.chars();
                    let title: String = c
                        .next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or_default();
                    out.push_str(&format!("   {title}: {v}\n"));
                }
            }
        }
    }
    let mem = info["MemTotal"].as_f64().unwrap_or(0.0);
    out.push_str(&format!(
        " Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n ID: {}\n Docker Root Dir: {}\n Debug Mode: {}\n Experimental: {}\n",
        s(&info, "KernelVersion"),
        s(&info, "OperatingSystem"),
        s(&info, "OSType"),
        s(&info, "Architecture"),
        n("NCPU"),
        bytes_size(mem),
        s(&info, "Name"),
        s(&info, "ID"),
        s(&info, "DockerRootDir"),
        n("Debug"),
        n("ExperimentalBuild"),
    ));
    let insecure = strs(&info["RegistryConfig"]["InsecureRegistryCIDRs"]);
    if !insecure.is_empty() {
        out.push_str(" Insecure Registries:\n");
        for r in insecure {
            out.push_str(&format!("  {r}\n"));
        }
    }
    out.push_str(&format!(
        " Live Restore Enabled: {}\n\n",
        n("LiveRestoreEnabled")
    ));
    let warnings: Vec<&str> = info["Warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    print(&out)?;
    for w in warnings {
        eprintln!("{w}");
    }
    Ok(())
}

pub(crate) fn df(ctx: &mut Ctx, a: DfArgs) -> Result<(), Error> {
    let du = ctx.client.get_json("/system/df")?;
    let arr = |k: &str| du[k].as_array().cloned().unwrap_or_default();
    let i64_of = |v: &Value, k: &str| v[k].as_i64().unwrap_or(0).max(0);
    let reclaim = |r: i64, total: i64| {
        if total > 0 {
            format!("{} ({}%)", human_size_prec(r as f64, 4), r * 100 / total)
        } else {
            human_size_prec(r as f64, 4)
        }
    };
    let mut rows = Vec::new();
    let images = arr("Images");
    let size = du["LayersSize"]
        .as_i64()
        .unwrap_or_else(|| images.iter().map(|i| i64_of(i, "Size")).sum());
    let used: i64 = images
        .iter()
        .filter(|i| i64_of(i, "Containers") > 0)
        .map(|i| i64_of(i, "Size") - i64_of(i, "SharedSize"))
        .sum();
    rows.push(json!({"Type": "Images", "TotalCount": images.len().to_string(),
        "Active": images.iter().filter(|i| i64_of(i, "Containers") > 0).count().to_string(),
        "Size": human_size_prec(size as f64, 4), "Reclaimable": reclaim((size - used).max(0), size)}));
    let cs = arr("Containers");
    let csize: i64 = cs.iter().map(|c| i64_of(c, "SizeRw")).sum();
    let running = |c: &Value| c["State"].as_str() == Some("running");
    let creclaim: i64 = cs
        .iter()
        .filter(|c| !running(c))
        .map(|c| i64_of(c, "SizeRw"))
        .sum();
    rows.push(
        json!({"Type": "Containers", "TotalCount": cs.len().to_string(),
        "Active": cs.iter().filter(|c| running(c)).count().to_string(),
        "Size": human_size_prec(csize as f64, 4), "Reclaimable": reclaim(creclaim, csize)}),
    );
    let vs = arr("Volumes");
    let vsize: i64 = vs
        .iter()
        .map(|v| v["UsageData"]["Size"].as_i64().unwrap_or(0).max(0))
        .sum();
    let vused = |v: &Value| v["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0;
    let vreclaim: i64 = vs
        .iter()
        .filter(|v| !vused(v))
        .map(|v| v["UsageData"]["Size"].as_i64().unwrap_or(0).max(0))
        .sum();
    rows.push(
        json!({"Type": "Local Volumes", "TotalCount": vs.len().to_string(),
        "Active": vs.iter().filter(|v| vused(v)).count().to_string(),
        "Size": human_size_prec(vsize as f64, 4), "Reclaimable": reclaim(vreclaim, vsize)}),
    );
    let bc = arr("BuildCache");
    let bsize: i64 = bc.iter().map(|b| i64_of(b, "Size")).sum();
    let breclaim: i64 = bc
        .iter()
        .filter(|b| b["InUse"] != json!(true) && b["Shared"] != json!(true))
        .map(|b| i64_of(b, "Size"))
        .sum();
    rows.push(json!({"Type": "Build Cache", "TotalCount": bc.len().to_string(),
        "Active": bc.iter().filter(|b| b["InUse"] == json!(true)).count().to_string(),
        "Size": human_size_prec(bsize as f64, 4), "Reclaimable": human_size_prec(breclaim as f64, 4)}));
    if a.verbose {
        return df_verbose(
            &du,
            a.format.as_deref(),
            human_size_prec(breclaim as f64, 4),
        );
    }
    let f = ListFormat::parse(
        a.format.as_deref(),
        "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
    )?;
    let titles = [
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ];
    print(&f.render(&rows, &titles)?)
}

/// `system df -v`: docker's four tables (images, containers, local volumes, build cache), or
/// with `--format json` one object holding their rows.
fn df_verbose(du: &Value, format: Option<&str>, build_cache_size: String) -> Result<(), Error> {
    let arr = |k: &str| du[k].as_array().cloned().unwrap_or_default();
    let now = now_unix() as i64;
    let size_or_na = |v: &Value| match v.as_i64() {
        Some(n) if n >= 0 => human_size_prec(n as f64, 4),
        _ => "N/A".to_string(),
    };
    let images: Vec<Value> = arr("Images")
        .iter()
        .map(|i| {
            // the first tag only, <none> for a dangling image
            let (repo, tag) = i["RepoTags"]
                .as_array()
                .and_then(|t| t.first())
                .and_then(Value::as_str)
                .filter(|t| *t != "<none>:<none>")
                .map(familiar)
                .and_then(|f| {
                    let at = f.rfind(':').filter(|at| !f[at + 1..].contains('/'))?;
                    Some((f[..at].to_string(), f[at + 1..].to_string()))
                })
                .unwrap_or_else(|| ("<none>".into(), "<none>".into()));
            let size = i["Size"].as_i64().unwrap_or(0);
            let shared = i["SharedSize"].as_i64().unwrap_or(-1);
            let created = i["Created"].as_i64().unwrap_or(0);
            row(vec![
                (
                    "Containers",
                    json!(match i["Containers"].as_i64() {
                        Some(n) if n >= 0 => n.to_string(),
                        _ => "N/A".to_string(),
                    }),
                ),
                ("CreatedAt", json!(format_created_at(created))),
                (
                    "CreatedSince",
                    json!(format!("{} ago", human_duration(now - created))),
                ),
                ("ID", json!(short_id(i["Id"].as_str().unwrap_or("")))),
                ("Repository", json!(repo)),
                ("SharedSize", json!(size_or_na(&i["SharedSize"]))),
                ("Size", json!(human_size(size as f64))),
                ("Tag", json!(tag)),
                (
                    "UniqueSize",
                    json!(if shared < 0 {
                        "N/A".to_string()
                    } else {
                        human_size_prec((size - shared) as f64, 4)
                    }),
                ),
                ("VirtualSize", json!(human_size(size as f64))),
            ])
        })
        .collect();
    let containers: Vec<Value> = arr("Containers")
        .iter()
        .map(|c| container_row(c, false))
        .collect();
    let volumes: Vec<Value> = arr("Volumes")
        .iter()
        .map(|v| {
            row(vec![
                ("Driver", v["Driver"].clone()),
                ("Labels", json!("")),
                (
                    "Links",
                    json!(match v["UsageData"]["RefCount"].as_i64() {
                        Some(n) if n >= 0 => n.to_string(),
                        _ => "N/A".to_string(),
                    }),
                ),
                ("Mountpoint", v["Mountpoint"].clone()),
                ("Name", v["Name"].clone()),
                ("Scope", v["Scope"].clone()),
                ("Size", json!(size_or_na(&v["UsageData"]["Size"]))),
            ])
        })
        .collect();
    if format == Some("json") {
        let all = json!({
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
        });
        return println(&all.to_string());
    }
    let table = |rows: &[Value], template: &str, titles: &[(&str, &str)]| {
        ListFormat::parse(Some(&format!("table {template}")), "")?.render(rows, titles)
    };
    let mut out = String::from("Images space usage:\n\n");
    out.push_str(&table(
        &images,
        "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.VirtualSize}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        &[
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("ID", "IMAGE ID"),
            ("CreatedSince", "CREATED"),
            ("VirtualSize", "SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("Containers", "CONTAINERS"),
        ],
    )?);
    out.push_str("\nContainers space usage:\n\n");
    out.push_str(&table(
        &containers,
        "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        &[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("LocalVolumes", "LOCAL VOLUMES"),
            ("Size", "SIZE"),
            ("RunningFor", "CREATED"),
            ("Status", "STATUS"),
            ("Names", "NAMES"),
        ],
    )?);
    out.push_str("\nLocal Volumes space usage:\n\n");
    out.push_str(&table(
        &volumes,
        "{{.Name}}\t{{.Links}}\t{{.Size}}",
        &[
            ("Name", "VOLUME NAME"),
            ("Links", "LINKS"),
            ("Size", "SIZE"),
        ],
    )?);
    out.push_str(&format!("\nBuild cache usage: {build_cache_size}\n\n"));
    out.push_str(&table(
        &[],
        "{{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
        &[
            ("ID", "CACHE ID"),
            ("CacheType", "CACHE TYPE"),
            ("Size", "SIZE"),
            ("CreatedSince", "CREATED"),
            ("LastUsedSince", "LAST USED"),
            ("UsageCount", "USAGE"),
            ("Shared", "SHARED"),
        ],
    )?);
    print(&out)
}

pub(crate) fn events(ctx: &mut Ctx, a: EventsArgs) -> Result<(), Error> {
    let ts = |v: &Option<String>, flag: &str| -> Result<Option<String>, Error> {
        match v {
            None => Ok(None),
            Some(v) => api_timestamp(v)
                .map(Some)
                .ok_or_else(|| Error::Usage(format!("invalid value {v:?} for --{flag}: want a Unix timestamp, an RFC 3339 date or a duration like 10m"))),
        }
    };
    let since = ts(&a.since, "since")?;
    let until = ts(&a.until, "until")?;
    let mut q = Query::new();
    if let Some(f) = filters_json(&a.filter)? {
        q = q.add("filters", f);
    }
    if let Some(s) = since {
        q = q.add("since", s);
    }
    if let Some(u) = until {
        q = q.add("until", u);
    }
    let tmpl = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(Template::parse("{{json .}}")?),
        Some(f) => Some(Template::parse(f)?),
    };
    let resp = ctx
        .client
        .request("GET", &format!("/events{}", q.render()), &[], Payload::None)?;
    for ev in resp.json_stream() {
        let ev = ev?;
        let line = match &tmpl {
            Some(t) => t.render(&ev)?,
            None => format_event(&ev),
        };
        println(&line)?;
    }
    Ok(())
}

/// docker's default event line: `time Type Action Actor.ID (k=v, ...)`, attributes sorted.
fn format_event(ev: &Value) -> String {
    let nanos = ev["timeNano"]
        .as_i64()
        .map(i128::from)
        .unwrap_or_else(|| ev["time"].as_i64().unwrap_or(0) as i128 * 1_000_000_000);
    let mut line = format!(
        "{} {} {} {}",
        format_rfc3339_nano(nanos),
        s(ev, "Type"),
        s(ev, "Action"),
        s(&ev["Actor"], "ID")
    );
    if let Some(attrs) = ev["Actor"]["Attributes"]
        .as_object()
        .filter(|m| !m.is_empty())
    {
        let mut kv: Vec<String> = attrs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        kv.sort();
        line.push_str(&format!(" ({})", kv.join(", ")));
    }
    line
}

/// `docker inspect`: without `--type`, tries container, image, network, volume in docker's order
/// and skips to the next kind on 404.
pub(crate) fn inspect(ctx: &mut Ctx, a: InspectArgs, forced: Option<&str>) -> Result<(), Error> {
    let kind = forced.map(str::to_string).or(a.kind.clone());
    let kinds: Vec<&str> = match kind.as_deref() {
        None => vec!["container", "image", "network", "volume"],
        Some(k @ ("container" | "image" | "network" | "volume")) => vec![k],
        Some(k) => {
            return Err(Error::Usage(format!(
                "\"{k}\" is not a valid value for --type"
            )));
        }
    };
    let tmpl = match a.format.as_deref() {
        None | Some("") | Some("json") => None,
        Some(f) => Some(Template::parse(f)?),
    };
    let mut raws: Vec<Vec<u8>> = Vec::new();
    let mut failed: Option<Error> = None;
    let mut messages = Vec::new();
    for name in &a.names {
        let mut found = None;
        for k in &kinds {
            let path = match *k {
                "container" => format!(
                    "/containers/{}/json{}",
                    encode_path(name),
                    if a.size { "?size=1" } else { "" }
                ),
                "image" => format!("/images/{}/json", encode_path(name)),
                "network" => format!("/networks/{}", encode_path(name)),
                _ => format!("/volumes/{}", encode_path(name)),
            };
            match ctx.client.request("GET", &path, &[], Payload::None) {
                Ok(resp) => {
                    let mut body = Vec::new();
                    std::io::Read::read_to_end(&mut resp.into_body(), &mut body)
                        .map_err(Error::Stream)?;
                    found = Some(body);
                    break;
                }
                Err(e) if e.is_not_found() && kinds.len() > 1 => continue,
                Err(e) if e.is_not_found() => {
                    found = None;
                    failed = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        match found {
            Some(b) => raws.push(b),
            None => {
                let e = failed
                    .take()
                    .unwrap_or_else(|| Error::NoSuchObject(name.clone()));
                messages.push(if e.is_daemon_error() {
                    format!("Error response from daemon: {e}")
                } else {
                    format!("Error: {e}")
                });
                failed = Some(Error::Exit(1));
            }
        }
    }
    match tmpl {
        Some(t) => {
            for raw in &raws {
                let v: Value =
                    serde_json::from_slice(raw).map_err(|e| Error::BadJson(e.to_string()))?;
                println(&t.render(&v)?)?;
            }
        }
        None => {
            let items: Vec<String> = raws
                .iter()
                .map(|r| format!("    {}", indent_json(r, 1)))
                .collect();
            if items.is_empty() {
                println("[]")?;
            } else {
                println(&format!("[\n{}\n]", items.join(",\n")))?;
            }
        }
    }
    for m in messages {
        eprintln!("{m}");
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `system prune`: containers, networks, (volumes), images, build cache, as docker does them.
pub(crate) fn prune(ctx: &mut Ctx, a: PruneArgs) -> Result<(), Error> {
    if !a.force {
        let mut what = vec![
            "all stopped containers",
            "all networks not used by at least one container",
        ];
        if a.volumes {
            what.push("all anonymous volumes not used by at least one container");
        }
        what.push(if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        });
        what.push(if a.all {
            "all build cache"
        } else {
            "unused build cache"
        });
        // on stdout, as docker's prompt
        print(&format!(
            "WARNING! This will remove:\n  - {}\n\nAre you sure you want to continue? [y/N] ",
            what.join("\n  - ")
        ))?;
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let filters = filters_json(&a.filter)?;
    let q = |extra: Option<(&str, &str)>| -> String {
        let mut m: serde_json::Map<String, Value> = filters
            .as_deref()
            .and_then(|f| serde_json::from_str(f).ok())
            .unwrap_or_default();
        if let Some((k, v)) = extra {
            m.insert(k.into(), json!({v: true}));
        }
        if m.is_empty() {
            String::new()
        } else {
            Query::new()
                .add("filters", Value::Object(m).to_string())
                .render()
        }
    };
    let mut reclaimed: i64 = 0;
    let report = |title: &str, items: Vec<String>| -> Result<(), Error> {
        if !items.is_empty() {
            println(&format!("{title}:\n{}\n", items.join("\n")))?;
        }
        Ok(())
    };
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let c = ctx
        .client
        .post_empty(&format!("/containers/prune{}", q(None)))?;
    reclaimed += c["SpaceReclaimed"].as_i64().unwrap_or(0);
    report("Deleted Containers", strs(&c["ContainersDeleted"]))?;
    let n = ctx
        .client
        .post_empty(&format!("/networks/prune{}", q(None)))?;
    report("Deleted Networks", strs(&n["NetworksDeleted"]))?;
    if a.volumes {
        let v = ctx
            .client
            .post_empty(&format!("/volumes/prune{}", q(None)))?;
        reclaimed += v["SpaceReclaimed"].as_i64().unwrap_or(0);
        report("Deleted Volumes", strs(&v["VolumesDeleted"]))?;
    }
    let i = ctx.client.post_empty(&format!(
        "/images/prune{}",
        q(Some(("dangling", if a.all { "false" } else { "true" })))
    ))?;
    reclaimed += i["SpaceReclaimed"].as_i64().unwrap_or(0);
    let deleted: Vec<String> = i["ImagesDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| {
            let mut v = Vec::new();
            if let Some(u) = d["Untagged"].as_str() {
                v.push(format!("untagged: {u}"));
            }
            if let Some(x) = d["Deleted"].as_str() {
                v.push(format!("deleted: {x}"));
            }
            v
        })
        .collect();
    report("Deleted Images", deleted)?;
    // the build cache endpoint is optional (berthd has no builder yet): a 404 is not an error
    match ctx.client.post_empty(&format!(
        "/build/prune{}",
        if a.all { "?all=1" } else { "" }
    )) {
        Ok(b) => {
            reclaimed += b["SpaceReclaimed"].as_i64().unwrap_or(0);
            report("Deleted build cache objects", strs(&b["CachesDeleted"]))?;
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    println(&format!(
        "Total reclaimed space: {}",
        human_size_prec(reclaimed as f64, 4)
    ))
}
