//! Container commands. `run` follows the docker CLI's wire sequence: create (pull and retry on
//! 404), attach (hijacked, before start), wait (headers first), start, stream, exit with the
//! container's status.

use std::io::IsTerminal;

use berth_core::DetachKeys;
use serde_json::{Map, Value, json};

use crate::Ctx;
use crate::attached::{
    RawTerminal, Streamed, detach_keys, pump, resize, resize_redrawing, terminal_size,
};
use crate::cli::{
    AttachArgs, ContainersArgs, ExecArgs, KillArgs, LogsArgs, PortArgs, PsArgs, RenameArgs, RmArgs,
    RunArgs, StartArgs, StopArgs, TopArgs,
};
use crate::client::{Payload, Query, Response, encode_path};
use crate::error::{Error, start_failure_status};
use crate::output::{filters_json, print, println, short_id};
use crate::stdcopy;
use crate::template::{ListFormat, row, tabwrite_min};
use crate::units::{api_timestamp, format_created_at, human_duration, human_size, now_unix};

pub(crate) fn path_of(container: &str) -> String {
    format!("/containers/{}", encode_path(container))
}

// ---------------------------------------------------------------------------------------------
// ps

fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn format_ports(ports: &[Value]) -> String {
    let mut items: Vec<(i64, String)> = ports
        .iter()
        .map(|p| {
            let private = p["PrivatePort"].as_i64().unwrap_or(0);
            let proto = p["Type"].as_str().unwrap_or("tcp");
            let text = match (p["IP"].as_str(), p["PublicPort"].as_i64()) {
                (Some(ip), Some(public)) if !ip.is_empty() => {
                    let ip = if ip.contains(':') {
                        format!("[{ip}]")
                    } else {
                        ip.to_string()
                    };
                    format!("{ip}:{public}->{private}/{proto}")
                }
                _ => format!("{private}/{proto}"),
            };
            (private, text)
        })
        .collect();
    items.sort();
    items.dedup();
    items
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn container_row(c: &Value, no_trunc: bool) -> Value {
    let id = c["Id"].as_str().unwrap_or("");
    let names: Vec<String> = c["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
        .filter(|n| no_trunc || !n.contains('/'))
        .collect();
    let image = c["Image"].as_str().unwrap_or("");
    let image = if !no_trunc && image.starts_with("sha256:") {
        short_id(image)
    } else {
        image.to_string()
    };
    let command = c["Command"].as_str().unwrap_or("");
    let command = if no_trunc {
        command.to_string()
    } else {
        ellipsis(command, 20)
    };
    let created = c["Created"].as_i64().unwrap_or(0);
    let labels: Vec<String> = c["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| match m["Name"].as_str().filter(|n| !n.is_empty()) {
            Some(n) => {
                if no_trunc {
                    n.to_string()
                } else {
                    ellipsis(n, 15)
                }
            }
            None => m["Source"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    let networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    // docker's: the virtual size only when the daemon counted one
    let rw = human_size(c["SizeRw"].as_i64().unwrap_or(0) as f64);
    let size = match c["SizeRootFs"].as_i64().filter(|root| *root > 0) {
        Some(root) => format!("{rw} (virtual {})", human_size(root as f64)),
        None => rw,
    };
    let ports = format_ports(c["Ports"].as_array().map(Vec::as_slice).unwrap_or(&[]));
    row(vec![
        ("Command", json!(format!("{command:?}"))),
        ("CreatedAt", json!(format_created_at(created))),
        (
            "ID",
            json!(if no_trunc {
                id.to_string()
            } else {
                short_id(id)
            }),
        ),
        ("Image", json!(image)),
        ("Labels", json!(labels.join(","))),
        (
            "LocalVolumes",
            json!(
                c["Mounts"]
                    .as_array()
                    .map(|m| m.iter().filter(|m| m["Driver"] == "local").count())
                    .unwrap_or(0)
                    .to_string()
            ),
        ),
        ("Mounts", json!(mounts.join(","))),
        ("Names", json!(names.join(","))),
        ("Networks", json!(networks.join(","))),
        ("Platform", Value::Null),
        ("Ports", json!(ports)),
        (
            "RunningFor",
            json!(format!(
                "{} ago",
                human_duration(now_unix() as i64 - created)
            )),
        ),
        ("Size", json!(size)),
        ("State", c["State"].clone()),
        ("Status", c["Status"].clone()),
    ])
}

const PS_TITLES: [(&str, &str); 14] = [
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

pub(crate) fn ps(ctx: &mut Ctx, a: PsArgs) -> Result<(), Error> {
    let default = if a.size {
        "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
    } else {
        "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    };
    let format = if a.quiet {
        Some("{{.ID}}")
    } else {
        a.format.as_deref()
    };
    // docker asks for sizes when the template shows them
    let wants_size = a.size || format.is_some_and(|f| f.contains(".Size"));
    let limit = if a.latest { 1 } else { a.last };
    let mut q = Query::new()
        .add_if(a.all, "all", "1")
        .add_if(limit > 0, "limit", limit.to_string())
        .add_if(wants_size, "size", "1");
    if let Some(f) = filters_json(&a.filter)? {
        q = q.add("filters", f);
    }
    let list = ctx
        .client
        .get_json(&format!("/containers/json{}", q.render()))?;
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| container_row(c, a.no_trunc))
        .collect();
    let f = ListFormat::parse(format, default)?;
    print(&f.render(&rows, &PS_TITLES)?)
}

// ---------------------------------------------------------------------------------------------
// create / run

fn read_env_files(files: &[String]) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| Error::Usage(format!("reading env file {f}: {e}")))?;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.push(line.to_string());
        }
    }
    Ok(out)
}

/// `-e KEY=v` as is; `-e KEY` takes KEY from our environment (dropped when unset), as docker.
fn env_list(env: &[String], files: &[String]) -> Result<Vec<String>, Error> {
    let mut all = read_env_files(files)?;
    all.extend(env.iter().cloned());
    Ok(all
        .into_iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e)
            } else {
                std::env::var(&e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect())
}

/// docker's RAMInBytes: `512m`, `1g`, `100k`, plain bytes; binary multiples.
pub(crate) fn ram_in_bytes(s: &str) -> Result<i64, Error> {
    let t = s.trim().to_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.parse::<f64>()
        .map(|n| (n * mult as f64) as i64)
        .map_err(|_| Error::Usage(format!("invalid size: {s:?}")))
}

fn split_port_proto(s: &str) -> (String, String) {
    match s.split_once('/') {
        Some((p, proto)) => (p.to_string(), proto.to_string()),
        None => (s.to_string(), "tcp".to_string()),
    }
}

/// `ExposedPorts` and `HostConfig.PortBindings` of a create body.
type PortMaps = (Map<String, Value>, Map<String, Value>);

/// `80` or `80-82` (docker's port ranges), as the ports they name.
fn port_range(text: &str) -> Option<(u16, u16)> {
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
        None => {
            let port = text.parse().ok()?;
            (port, port)
        }
    };
    (first <= last).then_some((first, last))
}

/// `-p [ip:][hostPort:]containerPort[/proto]` → (ExposedPorts,
/// PortBindings). Ranges expand as the docker CLI expands them:
/// `8000-8001:80-81` pairs the ports, `80-81` publishes each on a random
/// port, and a host range for one container port (`8000-8010:80`) is
/// passed on for the daemon to pick from.
fn parse_publish(specs: &[String], expose: &[String]) -> Result<PortMaps, Error> {
    let mut exposed = Map::new();
    let mut bindings: Map<String, Value> = Map::new();
    for e in expose {
        let (p, proto) = split_port_proto(e);
        let (first, last) = port_range(&p)
            .ok_or_else(|| Error::Usage(format!("invalid range format for --expose: {e}")))?;
        for port in first..=last {
            exposed.insert(format!("{port}/{proto}"), json!({}));
        }
    }
    for spec in specs {
        let (rest, proto) = split_port_proto(spec);
        // IPv6 host addresses come bracketed: [::1]:8080:80
        let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
            let (ip, r) = r
                .split_once("]:")
                .ok_or_else(|| Error::Usage(format!("invalid port spec {spec:?}")))?;
            (ip.to_string(), r.to_string())
        } else {
            (String::new(), rest)
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, container) = match parts.as_slice() {
            [c] => (ip, String::new(), c.to_string()),
            [h, c] => (ip, h.to_string(), c.to_string()),
            [i, h, c] => (i.to_string(), h.to_string(), c.to_string()),
            _ => return Err(Error::Usage(format!("invalid port spec {spec:?}"))),
        };
        let (first, last) = port_range(&container)
            .ok_or_else(|| Error::Usage(format!("invalid containerPort: {container}")))?;
        let host_range = if host.is_empty() {
            None
        } else {
            Some(
                port_range(&host)
                    .ok_or_else(|| Error::Usage(format!("invalid hostPort: {host}")))?,
            )
        };
        let count = last - first;
        let host_ports: Vec<String> = match host_range {
            None => vec![String::new(); usize::from(count) + 1],
            // One container port, a host range: the daemon picks.
            Some(_) if count == 0 => vec![host.clone()],
            Some((h_first, h_last)) if h_last - h_first == count => {
                (h_first..=h_last).map(|p| p.to_string()).collect()
            }
            Some(_) => {
                return Err(Error::Usage(format!(
                    "invalid ranges specified for container and host Ports: {container} and {host}"
                )));
            }
        };
        for (port, host_port) in (first..=last).zip(host_ports) {
            let key = format!("{port}/{proto}");
            exposed.insert(key.clone(), json!({}));
            let entry = bindings.entry(key).or_insert_with(|| json!([]));
            if let Some(list) = entry.as_array_mut() {
                list.push(json!({"HostIp": ip, "HostPort": host_port}));
            }
        }
    }
    Ok((exposed, bindings))
}

pub(crate) fn restart_policy(s: &str) -> Result<Value, Error> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (
            n,
            c.parse::<i64>()
                .map_err(|_| Error::Usage(format!("invalid restart policy {s:?}")))?,
        ),
        None => (s, 0),
    };
    match name {
        "no" | "always" | "unless-stopped" | "on-failure" => {
            Ok(json!({"Name": name, "MaximumRetryCount": count}))
        }
        _ => Err(Error::Usage(format!("invalid restart policy {s:?}"))),
    }
}

fn labels_map(labels: &[String]) -> Map<String, Value> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (l.to_string(), json!("")),
        })
        .collect()
}

/// The `/containers/create` body, with the fields docker's CLI sends.
fn create_body(a: &RunArgs, image: &str, cmd: &[String]) -> Result<Value, Error> {
    let (exposed, bindings) = parse_publish(&a.publish, &a.expose)?;
    let attach_all = a.attach.is_empty() && !a.detach;
    let attach = |s: &str| attach_all || a.attach.iter().any(|x| x.eq_ignore_ascii_case(s));
    let attach_stdin = if a.detach {
        false
    } else {
        a.interactive && (attach_all || attach("stdin"))
    };
    let mut binds = Vec::new();
    let mut volumes = Map::new();
    for v in &a.volume {
        // `-v /data` is an anonymous volume; anything with a source is a bind/named volume
        if v.contains(':') {
            binds.push(json!(v));
        } else {
            volumes.insert(v.clone(), json!({}));
        }
    }
    let mounts = a
        .mount
        .iter()
        .map(|m| crate::commands::mount::parse(m))
        .collect::<Result<Vec<Value>, Error>>()?;
    let tmpfs: Map<String, Value> = a
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((p, o)) => (p.to_string(), json!(o)),
            None => (t.to_string(), json!("")),
        })
        .collect();
    let log_config: Map<String, Value> = a
        .log_opt
        .iter()
        .filter_map(|o| o.split_once('=').map(|(k, v)| (k.to_string(), json!(v))))
        .collect();
    let network = a.network.clone().unwrap_or_else(|| "default".into());
    let mut endpoint = json!({});
    if !a.network_alias.is_empty() {
        endpoint["Aliases"] = json!(a.network_alias);
    }
    let entrypoint = match &a.entrypoint {
        None => Value::Null,
        Some(e) if e.is_empty() => json!([""]),
        Some(e) => json!([e]),
    };
    let env = env_list(&a.env, &a.env_file)?;
    let mut host = json!({
        "Binds": if binds.is_empty() { Value::Null } else { json!(binds) },
        "NetworkMode": network,
        "PortBindings": bindings,
        "RestartPolicy": restart_policy(&a.restart)?,
        "AutoRemove": a.rm,
        "LogConfig": {"Type": a.log_driver.clone().unwrap_or_default(), "Config": log_config},
        "CapAdd": if a.cap_add.is_empty() { Value::Null } else { json!(a.cap_add) },
        "CapDrop": if a.cap_drop.is_empty() { Value::Null } else { json!(a.cap_drop) },
        "Dns": a.dns,
        "ExtraHosts": if a.add_host.is_empty() { Value::Null } else { json!(a.add_host) },
        "Privileged": a.privileged,
        "PublishAllPorts": a.publish_all,
        "ReadonlyRootfs": a.read_only,
        "SecurityOpt": if a.security_opt.is_empty() { Value::Null } else { json!(a.security_opt) },
        "Tmpfs": if tmpfs.is_empty() { Value::Null } else { Value::Object(tmpfs) },
        "Mounts": if mounts.is_empty() { Value::Null } else { json!(mounts) },
        "VolumesFrom": if a.volumes_from.is_empty() { Value::Null } else { json!(a.volumes_from) },
        "MemorySwappiness": -1,
    });
    if a.init {
        host["Init"] = json!(true);
    }
    if let Some(m) = &a.memory {
        host["Memory"] = json!(ram_in_bytes(m)?);
    }
    if let Some(c) = a.cpus {
        host["NanoCpus"] = json!((c * 1e9) as i64);
    }
    if let Some(s) = &a.shm_size {
        host["ShmSize"] = json!(ram_in_bytes(s)?);
    }
    if let Some(p) = &a.pid {
        host["PidMode"] = json!(p);
    }
    if let Some(i) = &a.ipc {
        host["IpcMode"] = json!(i);
    }
    if a.tty && std::io::stdout().is_terminal() {
        if let Some((rows, cols)) = terminal_size() {
            host["ConsoleSize"] = json!([rows, cols]);
        }
    }
    let mut body = json!({
        "Hostname": a.hostname.clone().unwrap_or_default(),
        "Domainname": a.domainname.clone().unwrap_or_default(),
        "User": a.user.clone().unwrap_or_default(),
        "AttachStdin": attach_stdin,
        "AttachStdout": !a.detach && attach("stdout"),
        "AttachStderr": !a.detach && attach("stderr"),
        "ExposedPorts": exposed,
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        "StdinOnce": a.interactive && attach_stdin,
        "Env": if env.is_empty() { Value::Null } else { json!(env) },
        "Cmd": if cmd.is_empty() { Value::Null } else { json!(cmd) },
        "Image": image,
        "Volumes": volumes,
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Entrypoint": entrypoint,
        "Labels": labels_map(&a.label),
        "HostConfig": host,
        "NetworkingConfig": {"EndpointsConfig": {network_key(&a.network): endpoint}},
    });
    if let Some(s) = &a.stop_signal {
        body["StopSignal"] = json!(s);
    }
    if let Some(t) = a.stop_timeout {
        body["StopTimeout"] = json!(t);
    }
    Ok(body)
}

fn network_key(n: &Option<String>) -> String {
    n.clone().unwrap_or_else(|| "default".into())
}

/// Splits `IMAGE [COMMAND...]`, rejecting a leading `-` that the parser let through as a
/// positional (an unknown flag).
fn image_and_cmd(a: &RunArgs) -> Result<(String, Vec<String>), Error> {
    let image = a.image_and_command[0].clone();
    if image.starts_with('-') {
        return Err(Error::Usage(format!("unknown flag: {image}")));
    }
    Ok((image, a.image_and_command[1..].to_vec()))
}

/// `POST /containers/create`, pulling on "No such image" as docker does; prints warnings.
fn create_container(ctx: &mut Ctx, a: &RunArgs) -> Result<String, Error> {
    let (image, cmd) = image_and_cmd(a)?;
    let body = create_body(a, &image, &cmd)?;
    let q = Query::new()
        .add_if(a.name.is_some(), "name", a.name.clone().unwrap_or_default())
        .add_if(
            a.platform.is_some(),
            "platform",
            a.platform.clone().unwrap_or_default(),
        );
    let path = format!("/containers/create{}", q.render());
    if a.pull == "always" {
        crate::commands::image::pull_image(ctx, &image, a.platform.as_deref(), true, a.quiet)?;
    }
    let created = match ctx.client.post_json(&path, &body) {
        Err(e)
            if e.is_not_found() && e.to_string().contains("No such image") && a.pull != "never" =>
        {
            let full =
                crate::reference::familiar(&crate::reference::Reference::parse(&image).full());
            eprintln!("Unable to find image '{full}' locally");
            crate::commands::image::pull_image(ctx, &image, a.platform.as_deref(), true, a.quiet)?;
            ctx.client.post_json(&path, &body)?
        }
        other => other?,
    };
    for w in created["Warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        eprintln!("WARNING: {w}");
    }
    let id = created["Id"].as_str().unwrap_or("").to_string();
    if let Some(f) = &a.cidfile {
        std::fs::write(f, &id).map_err(|e| Error::Usage(format!("writing cidfile {f}: {e}")))?;
    }
    Ok(id)
}

pub(crate) fn create_cmd(ctx: &mut Ctx, a: RunArgs) -> Result<(), Error> {
    let id = create_container(ctx, &a)?;
    println(&id)
}

/// Errors of `run`: docker prints `docker: <msg>` and exits 125 (126/127 for start failures).
fn run_failure(e: Error, start: bool) -> Error {
    if matches!(e, Error::Exit(_)) {
        return e;
    }
    if matches!(e, Error::Connect { .. }) {
        eprintln!("{e}");
        return Error::Exit(125);
    }
    let code = if start {
        start_failure_status(&e)
    } else {
        e.exit_code().max(125)
    };
    match &e {
        e if e.is_daemon_error() => eprintln!("berth: Error response from daemon: {e}"),
        Error::Usage(_) => eprintln!("berth: {e}. See 'berth run --help'."),
        e => eprintln!("berth: {e}"),
    }
    Error::Exit(code)
}

pub(crate) fn run(ctx: &mut Ctx, a: RunArgs) -> Result<(), Error> {
    let (detach_keys, keys) = if a.detach {
        (None, DetachKeys::default())
    } else {
        detach_keys(&ctx.config_dir, a.detach_keys.as_deref()).map_err(|e| run_failure(e, false))?
    };
    let id = create_container(ctx, &a).map_err(|e| run_failure(e, false))?;
    if a.detach {
        // docker opens the wait before start even when detached
        let wait = open_wait(ctx, &id, "next-exit").map_err(|e| run_failure(e, false))?;
        ctx.client
            .call("POST", &format!("{}/start", path_of(&id)))
            .map_err(|e| run_failure(e, true))?;
        drop(wait);
        return println(&id);
    }
    let attach_all = a.attach.is_empty();
    let has = |s: &str| attach_all || a.attach.iter().any(|x| x.eq_ignore_ascii_case(s));
    let stdin = a.interactive && has("stdin");
    let q = Query::new()
        .add_if(has("stderr"), "stderr", "1")
        .add_if(stdin, "stdin", "1")
        .add_if(has("stdout"), "stdout", "1")
        .add("stream", "1")
        .add_if(
            detach_keys.is_some(),
            "detachKeys",
            detach_keys.unwrap_or_default(),
        );
    let conn = ctx
        .client
        .hijack(
            &format!("{}/attach{}", path_of(&id), q.render()),
            Payload::None,
        )
        .map_err(|e| run_failure(e, false))?;
    let cond = if a.rm { "removed" } else { "next-exit" };
    let wait = open_wait(ctx, &id, cond).map_err(|e| run_failure(e, false))?;
    let raw = if a.tty && stdin && std::io::stdin().is_terminal() {
        RawTerminal::enable()
    } else {
        None
    };
    if a.sig_proxy && !a.tty {
        crate::signals::proxy_to(ctx.client.clone(), id.clone());
    }
    if let Err(e) = ctx.client.call("POST", &format!("{}/start", path_of(&id))) {
        drop(raw);
        return Err(run_failure(e, true));
    }
    if a.tty && std::io::stdout().is_terminal() {
        resize(ctx, &format!("{}/resize", path_of(&id)));
    }
    let streamed = pump(conn, a.tty, stdin, &keys);
    drop(raw);
    if streamed? == Streamed::Detached {
        // docker run says nothing and exits 0; the container runs on
        return Ok(());
    }
    let code = read_wait(wait)?;
    if code != 0 {
        Err(Error::Exit(code))
    } else {
        Ok(())
    }
}

/// `POST /containers/{id}/wait?condition=...`: returns once the headers arrived, body unread.
fn open_wait(ctx: &mut Ctx, id: &str, condition: &str) -> Result<Response, Error> {
    ctx.client.request(
        "POST",
        &format!("{}/wait?condition={condition}", path_of(id)),
        &[],
        Payload::None,
    )
}

fn read_wait(resp: Response) -> Result<i32, Error> {
    let v = resp.json()?;
    if let Some(msg) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        return Err(Error::InStream(msg.to_string()));
    }
    Ok(v["StatusCode"].as_i64().unwrap_or(0) as i32)
}

// ---------------------------------------------------------------------------------------------
// start / stop / kill / rm / wait / pause / rename / top

/// Runs `op` for each container, printing the name on success and docker's error line on
/// failure; exits 1 if any failed (docker's behaviour for multi-container commands).
pub(crate) fn for_each(
    ctx: &mut Ctx,
    containers: &[String],
    mut op: impl FnMut(&mut Ctx, &str) -> Result<Option<String>, Error>,
) -> Result<(), Error> {
    let mut failed = false;
    for c in containers {
        match op(ctx, c) {
            Ok(Some(line)) => println(&line)?,
            Ok(None) => {}
            Err(e) if e.is_daemon_error() => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
            Err(e) => return Err(e),
        }
    }
    if failed { Err(Error::Exit(1)) } else { Ok(()) }
}

pub(crate) fn start(ctx: &mut Ctx, a: StartArgs) -> Result<(), Error> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(Error::Usage(
                "you cannot start and attach multiple containers at once".into(),
            ));
        }
        let id = &a.containers[0];
        let (detach_keys, keys) = detach_keys(&ctx.config_dir, a.detach_keys.as_deref())?;
        let info = ctx.client.get_json(&format!("{}/json", path_of(id)))?;
        let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
        let stdin = a.interactive && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
        let q = Query::new()
            .add_if(
                detach_keys.is_some(),
                "detachKeys",
                detach_keys.unwrap_or_default(),
            )
            .add("stderr", "1")
            .add_if(stdin, "stdin", "1")
            .add("stdout", "1")
            .add("stream", "1");
        let conn = ctx.client.hijack(
            &format!("{}/attach{}", path_of(id), q.render()),
            Payload::None,
        )?;
        let wait = open_wait(ctx, id, "next-exit")?;
        let raw = if tty && stdin && std::io::stdin().is_terminal() {
            RawTerminal::enable()
        } else {
            None
        };
        if !tty {
            crate::signals::proxy_to(ctx.client.clone(), id.clone());
        }
        if let Err(e) = ctx.client.call("POST", &format!("{}/start", path_of(id))) {
            drop(raw);
            eprintln!("Error response from daemon: {e}");
            return Err(Error::Exit(start_failure_status(&e)));
        }
        if tty && std::io::stdout().is_terminal() {
            resize(ctx, &format!("{}/resize", path_of(id)));
        }
        let streamed = pump(conn, tty, stdin, &keys);
        drop(raw);
        if streamed? == Streamed::Detached {
            // as run: silent, status 0
            return Ok(());
        }
        let code = read_wait(wait)?;
        return if code != 0 {
            Err(Error::Exit(code))
        } else {
            Ok(())
        };
    }
    // docker names the failed ones again in a last line
    let mut failed = Vec::new();
    for c in &a.containers {
        match ctx.client.call("POST", &format!("{}/start", path_of(c))) {
            Ok(_) => println(c)?,
            Err(e) if e.is_daemon_error() => {
                eprintln!("Error response from daemon: {e}");
                failed.push(c.as_str());
            }
            Err(e) => return Err(e),
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    eprintln!("Error: failed to start containers: {}", failed.join(", "));
    Err(Error::Exit(1))
}

pub(crate) fn stop(ctx: &mut Ctx, a: StopArgs, verb: &str) -> Result<(), Error> {
    let q = Query::new()
        .add_if(
            a.signal.is_some(),
            "signal",
            a.signal.clone().unwrap_or_default(),
        )
        .add_if(a.timeout.is_some(), "t", a.timeout.unwrap_or(0).to_string());
    let q = q.render();
    for_each(ctx, &a.containers, |ctx, c| {
        ctx.client
            .call("POST", &format!("{}/{verb}{q}", path_of(c)))?;
        Ok(Some(c.to_string()))
    })
}

pub(crate) fn kill(ctx: &mut Ctx, a: KillArgs) -> Result<(), Error> {
    let q = Query::new()
        .add_if(
            a.signal.is_some(),
            "signal",
            a.signal.clone().unwrap_or_default(),
        )
        .render();
    for_each(ctx, &a.containers, |ctx, c| {
        ctx.client
            .call("POST", &format!("{}/kill{q}", path_of(c)))?;
        Ok(Some(c.to_string()))
    })
}

pub(crate) fn rm(ctx: &mut Ctx, a: RmArgs) -> Result<(), Error> {
    let q = Query::new()
        .add_if(a.volumes, "v", "1")
        .add_if(a.link, "link", "1")
        .add_if(a.force, "force", "1")
        .render();
    for_each(ctx, &a.containers, |ctx, c| {
        ctx.client.call("DELETE", &format!("{}{q}", path_of(c)))?;
        Ok(Some(c.to_string()))
    })
}

/// Prints each container's exit code (docker's `wait` itself exits 0).
pub(crate) fn wait(ctx: &mut Ctx, a: ContainersArgs) -> Result<(), Error> {
    for_each(ctx, &a.containers, |ctx, c| {
        let resp =
            ctx.client
                .request("POST", &format!("{}/wait", path_of(c)), &[], Payload::None)?;
        Ok(Some(read_wait(resp)?.to_string()))
    })
}

pub(crate) fn simple_post(ctx: &mut Ctx, a: ContainersArgs, verb: &str) -> Result<(), Error> {
    for_each(ctx, &a.containers, |ctx, c| {
        ctx.client.call("POST", &format!("{}/{verb}", path_of(c)))?;
        Ok(Some(c.to_string()))
    })
}

/// On failure docker prints the daemon's error, then a line naming the container, and exits 1.
pub(crate) fn rename(ctx: &mut Ctx, a: RenameArgs) -> Result<(), Error> {
    let q = Query::new().add("name", a.new_name.clone()).render();
    match ctx
        .client
        .call("POST", &format!("{}/rename{q}", path_of(&a.container)))
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_daemon_error() => {
            eprintln!("Error response from daemon: {e}");
            eprintln!("Error: failed to rename container named {}", a.container);
            Err(Error::Exit(1))
        }
        Err(e) => Err(e),
    }
}

/// `docker port`: the published bindings from inspect.
pub(crate) fn port(ctx: &mut Ctx, a: PortArgs) -> Result<(), Error> {
    let info = ctx
        .client
        .get_json(&format!("{}/json", path_of(&a.container)))?;
    for line in port_lines(&info, a.port.as_deref(), &a.container)? {
        println!("{line}");
    }
    Ok(())
}

/// `80/tcp -> 0.0.0.0:8080` per binding, sorted by port; with `wanted` (`80` or `80/udp`) only
/// the host addresses of that port, and an error naming it when it has none.
fn port_lines(info: &Value, wanted: Option<&str>, container: &str) -> Result<Vec<String>, Error> {
    let mut bindings: Vec<(u16, String, String)> = Vec::new();
    let ports = info["NetworkSettings"]["Ports"].as_object();
    for (key, list) in ports.into_iter().flatten() {
        let (num, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        for b in list.as_array().into_iter().flatten() {
            let ip = match b["HostIp"].as_str().unwrap_or("") {
                "" => "0.0.0.0".to_string(),
                v6 if v6.contains(':') => format!("[{v6}]"),
                v4 => v4.to_string(),
            };
            let host_port = b["HostPort"].as_str().unwrap_or("");
            bindings.push((
                num.parse().unwrap_or(0),
                format!("{num}/{proto}"),
                format!("{ip}:{host_port}"),
            ));
        }
    }
    bindings.sort();
    let Some(wanted) = wanted else {
        return Ok(bindings
            .into_iter()
            .map(|(_, key, host)| format!("{key} -> {host}"))
            .collect());
    };
    let wanted = if wanted.contains('/') {
        wanted.to_string()
    } else {
        format!("{wanted}/tcp")
    };
    let hosts: Vec<String> = bindings
        .into_iter()
        .filter(|(_, key, _)| *key == wanted)
        .map(|(_, _, host)| host)
        .collect();
    if hosts.is_empty() {
        return Err(Error::NotFound(format!(
            "No public port '{wanted}' published for {container}"
        )));
    }
    Ok(hosts)
}

pub(crate) fn top(ctx: &mut Ctx, a: TopArgs) -> Result<(), Error> {
    let q = Query::new()
        .add_if(!a.ps_args.is_empty(), "ps_args", a.ps_args.join(" "))
        .render();
    let top = ctx
        .client
        .get_json(&format!("{}/top{q}", path_of(&a.container)))?;
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|x| x.as_str().unwrap_or("").to_string())
            .collect()
    };
    let mut text = strs(&top["Titles"]).join("\t");
    text.push('\n');
    for p in top["Processes"].as_array().into_iter().flatten() {
        text.push_str(&strs(p).join("\t"));
        text.push('\n');
    }
    print(&tabwrite_min(&text, 20))
}

// ---------------------------------------------------------------------------------------------
// logs / exec

pub(crate) fn logs(ctx: &mut Ctx, a: LogsArgs) -> Result<(), Error> {
    let info = ctx
        .client
        .get_json(&format!("{}/json", path_of(&a.container)))?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    let ts = |v: &Option<String>, flag: &str| -> Result<Option<String>, Error> {
        v.as_ref()
            .map(|v| {
                api_timestamp(v)
                    .ok_or_else(|| Error::Usage(format!("invalid value {v:?} for --{flag}")))
            })
            .transpose()
    };
    let q = Query::new()
        .add("stderr", "1")
        .add("stdout", "1")
        .add_if(a.follow, "follow", "1")
        .add_if(a.timestamps, "timestamps", "1")
        .add_if(a.details, "details", "1")
        .add("tail", a.tail.clone());
    let mut q = q;
    if let Some(s) = ts(&a.since, "since")? {
        q = q.add("since", s);
    }
    if let Some(u) = ts(&a.until, "until")? {
        q = q.add("until", u);
    }
    let resp = ctx.client.request(
        "GET",
        &format!("{}/logs{}", path_of(&id), q.render()),
        &[],
        Payload::None,
    )?;
    let mut body = resp.into_body();
    if tty {
        std::io::copy(&mut body, &mut std::io::stdout()).map_err(Error::Stream)?;
        Ok(())
    } else {
        stdcopy::demux(&mut body, &mut std::io::stdout(), &mut std::io::stderr())
    }
}

pub(crate) fn exec(ctx: &mut Ctx, a: ExecArgs) -> Result<(), Error> {
    let container = a.container_and_command[0].clone();
    if container.starts_with('-') {
        return Err(Error::Usage(format!("unknown flag: {container}")));
    }
    let cmd = a.container_and_command[1..].to_vec();
    let (detach_keys, keys) = detach_keys(&ctx.config_dir, a.detach_keys.as_deref())?;
    ctx.client
        .get_json(&format!("{}/json", path_of(&container)))?;
    let env = env_list(&a.env, &a.env_file)?;
    let mut body = json!({
        "User": a.user.clone().unwrap_or_default(),
        "Privileged": a.privileged,
        "Tty": a.tty,
        "AttachStdin": a.interactive && !a.detach,
        "AttachStderr": !a.detach,
        "AttachStdout": !a.detach,
        "Detach": a.detach,
        "DetachKeys": detach_keys.unwrap_or_default(),
        "Env": if env.is_empty() { Value::Null } else { json!(env) },
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
        "Cmd": cmd,
    });
    if a.tty && std::io::stdout().is_terminal() {
        if let Some((h, w)) = terminal_size() {
            body["ConsoleSize"] = json!([h, w]);
        }
    }
    let created = ctx
        .client
        .post_json(&format!("{}/exec", path_of(&container)), &body)?;
    let exec_id = created["Id"].as_str().unwrap_or("").to_string();
    let start = json!({"Detach": a.detach, "Tty": a.tty});
    if a.detach {
        ctx.client
            .request(
                "POST",
                &format!("/exec/{exec_id}/start"),
                &[],
                Payload::Json(&start),
            )?
            .drain()?;
        return Ok(());
    }
    let conn = ctx
        .client
        .hijack(&format!("/exec/{exec_id}/start"), Payload::Json(&start))?;
    let raw = if a.tty && a.interactive && std::io::stdin().is_terminal() {
        RawTerminal::enable()
    } else {
        None
    };
    if a.tty && std::io::stdout().is_terminal() {
        resize(ctx, &format!("/exec/{exec_id}/resize"));
    }
    let streamed = pump(conn, a.tty, a.interactive, &keys);
    drop(raw);
    if streamed? == Streamed::Detached {
        return Err(Error::Detached);
    }
    let inspect = ctx.client.get_json(&format!("/exec/{exec_id}/json"))?;
    let code = inspect["ExitCode"].as_i64().unwrap_or(0) as i32;
    if code != 0 {
        Err(Error::Exit(code))
    } else {
        Ok(())
    }
}

/// `docker attach`: the running container's streams until it exits (or the daemon closes the
/// stream), then its exit status.
pub(crate) fn attach(ctx: &mut Ctx, a: AttachArgs) -> Result<(), Error> {
    let (detach_keys, keys) = detach_keys(&ctx.config_dir, a.detach_keys.as_deref())?;
    let info = ctx
        .client
        .get_json(&format!("{}/json", path_of(&a.container)))?;
    if info["State"]["Running"] != json!(true) {
        return Err(Error::Usage(
            "You cannot attach to a stopped container, start it first".into(),
        ));
    }
    if info["State"]["Paused"] == json!(true) {
        return Err(Error::Usage(
            "You cannot attach to a paused container, unpause it first".into(),
        ));
    }
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let q = Query::new()
        .add_if(
            detach_keys.is_some(),
            "detachKeys",
            detach_keys.unwrap_or_default(),
        )
        .add("stderr", "1")
        .add_if(stdin, "stdin", "1")
        .add("stdout", "1")
        .add("stream", "1");
    // The stream can end before berthd records the exit, so the status
    // comes from a wait set up first (as the docker CLI does).
    let wait = open_wait(ctx, &id, "not-running")?;
    let conn = ctx.client.hijack(
        &format!("{}/attach{}", path_of(&id), q.render()),
        Payload::None,
    )?;
    if a.sig_proxy && !tty {
        crate::signals::proxy_to(ctx.client.clone(), id.clone());
    }
    let raw = if tty && stdin && std::io::stdin().is_terminal() {
        RawTerminal::enable()
    } else {
        None
    };
    if tty && std::io::stdout().is_terminal() {
        resize_redrawing(ctx, &format!("{}/resize", path_of(&id)));
    }
    let streamed = pump(conn, tty, stdin, &keys);
    drop(raw);
    if streamed? == Streamed::Detached {
        return Err(Error::Detached);
    }
    let code = read_wait(wait)?;
    if code != 0 {
        Err(Error::Exit(code))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lists_bindings_like_docker() {
        // NetworkSettings.Ports as dockerd (and berthd) answer it.
        let info = serde_json::json!({"NetworkSettings": {"Ports": {
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18081"}],
            "9000/udp": [{"HostIp": "0.0.0.0", "HostPort": "9000"},
                         {"HostIp": "::", "HostPort": "9000"}],
            "443/tcp": null,
            "8080/tcp": [{"HostIp": "", "HostPort": "32768"}]
        }}});
        assert_eq!(
            port_lines(&info, None, "web").unwrap(),
            [
                "80/tcp -> 127.0.0.1:18081",
                "8080/tcp -> 0.0.0.0:32768",
                "9000/udp -> 0.0.0.0:9000",
                "9000/udp -> [::]:9000",
            ]
        );
        assert_eq!(
            port_lines(&info, Some("80"), "web").unwrap(),
            ["127.0.0.1:18081"]
        );
        assert_eq!(
            port_lines(&info, Some("9000/udp"), "web").unwrap(),
            ["0.0.0.0:9000", "[::]:9000"]
        );
        let err = port_lines(&info, Some("443"), "web").unwrap_err();
        assert_eq!(
            err.to_string(),
            "No public port '443/tcp' published for web"
        );
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn ports_parse_and_render() {
        let (exposed, bindings) = parse_publish(
            &[
                "127.0.0.1:8080:80".into(),
                "9000:90/udp".into(),
                "70".into(),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(exposed.len(), 3);
        assert_eq!(
            bindings["80/tcp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": "8080"}])
        );
        assert_eq!(
            bindings["90/udp"],
            json!([{"HostIp": "", "HostPort": "9000"}])
        );
        assert!(parse_publish(&["a:b:c:d".into()], &[]).is_err());

        // Ranges, as the docker CLI expands them.
        let (exposed, bindings) = parse_publish(
            &[
                "127.0.0.1:8000-8001:80-81".into(),
                "90-91/udp".into(),
                "7000-7010:70".into(),
            ],
            &["60-62".into()],
        )
        .unwrap();
        assert_eq!(exposed.len(), 2 + 2 + 1 + 3);
        assert_eq!(
            bindings["81/tcp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": "8001"}])
        );
        assert_eq!(bindings["91/udp"], json!([{"HostIp": "", "HostPort": ""}]));
        assert_eq!(
            bindings["70/tcp"],
            json!([{"HostIp": "", "HostPort": "7000-7010"}])
        );
        assert!(exposed.contains_key("62/tcp"));
        let err = parse_publish(&["8000-8002:80-81".into()], &[]).unwrap_err();
        assert!(err.to_string().contains("invalid ranges"), "{err}");
        assert!(parse_publish(&["82-80".into()], &[]).is_err());
        assert!(parse_publish(&[], &["x".into()]).is_err());
        let ports = vec![
            json!({"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}),
            json!({"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}),
            json!({"PrivatePort": 443, "Type": "tcp"}),
        ];
        assert_eq!(
            format_ports(&ports),
            "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 443/tcp"
        );
    }

    #[test]
    fn sizes_and_policies() {
        assert_eq!(ram_in_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert!(ram_in_bytes("lots").is_err());
        assert_eq!(
            restart_policy("on-failure:3").unwrap(),
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert!(restart_policy("sometimes").is_err());
        assert_eq!(
            ellipsis("sh -c 'sleep 1000; echo done'", 20),
            "sh -c 'sleep 1000; …"
        );
    }

    #[test]
    fn ps_rows_have_docker_fields() {
        let c = json!({"Id": "0123456789abcdef", "Names": ["/web"], "Image": "busybox", "Command": "sleep 10",
            "Created": 0, "State": "running", "Status": "Up 1 second", "Ports": [], "Labels": {"a": "b"}});
        let r = container_row(&c, false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Command"], "\"sleep 10\"");
        assert_eq!(r["Labels"], "a=b");
    }
}
