//! `network create|ls|rm|inspect|connect|disconnect`, and the raw-JSON inspect shared with
//! `volume inspect`.

use serde_json::{Map, Value, json};

use crate::Ctx;
use crate::cli::{
    NamesArgs, NamesFormatArgs, NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs,
    NetworkLsArgs,
};
use crate::client::{Payload, Query, encode_path};
use crate::error::Error;
use crate::output::{filters_json, indent_json, print, println, short_id};
use crate::template::{ListFormat, Template, row};

pub(crate) fn key_values(list: &[String]) -> Map<String, Value> {
    list.iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (l.to_string(), json!("")),
        })
        .collect()
}

pub(crate) fn create(ctx: &mut Ctx, a: NetworkCreateArgs) -> Result<(), Error> {
    let config: Vec<Value> = a
        .subnet
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut c = json!({"Subnet": s});
            if let Some(g) = a.gateway.get(i) {
                c["Gateway"] = json!(g);
            }
            c
        })
        .collect();
    let body = json!({
        "Name": a.name, "Driver": a.driver, "Scope": "", "Internal": a.internal,
        "Attachable": a.attachable, "Ingress": false, "ConfigOnly": false, "ConfigFrom": null,
        "IPAM": {"Driver": "default", "Config": config, "Options": {}},
        "Options": key_values(&a.opt), "Labels": key_values(&a.label),
    });
    let mut body = body;
    // docker asks older daemons (API < 1.44) to refuse duplicate names
    if crate::client::version_less(&ctx.client.version()?, "1.44") {
        body["CheckDuplicate"] = json!(true);
    }
    let created = ctx.client.post_json("/networks/create", &body)?;
    if let Some(w) = created["Warning"].as_str().filter(|w| !w.is_empty()) {
        eprintln!("WARNING: {w}");
    }
    println(created["Id"].as_str().unwrap_or(""))
}

pub(crate) fn ls(ctx: &mut Ctx, a: NetworkLsArgs) -> Result<(), Error> {
    let mut q = Query::new();
    if let Some(f) = filters_json(&a.filter)? {
        q = q.add("filters", f);
    }
    let list = ctx.client.get_json(&format!("/networks{}", q.render()))?;
    let mut nets = list.as_array().cloned().unwrap_or_default();
    nets.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let rows: Vec<Value> = nets
        .iter()
        .map(|n| {
            let id = n["Id"].as_str().unwrap_or("");
            let labels: Vec<String> = n["Labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default();
            row(vec![
                ("CreatedAt", n["Created"].clone()),
                ("Driver", n["Driver"].clone()),
                (
                    "ID",
                    json!(if a.no_trunc {
                        id.to_string()
                    } else {
                        short_id(id)
                    }),
                ),
                (
                    "IPv4",
                    json!(n["EnableIPv4"].as_bool().unwrap_or(true).to_string()),
                ),
                (
                    "IPv6",
                    json!(n["EnableIPv6"].as_bool().unwrap_or(false).to_string()),
                ),
                (
                    "Internal",
                    json!(n["Internal"].as_bool().unwrap_or(false).to_string()),
                ),
                ("Labels", json!(labels.join(","))),
                ("Name", n["Name"].clone()),
                ("Scope", n["Scope"].clone()),
            ])
        })
        .collect();
    let format = if a.quiet {
        Some("{{.ID}}")
    } else {
        a.format.as_deref()
    };
    let f = ListFormat::parse(format, "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}")?;
    let titles = [
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("CreatedAt", "CREATED AT"),
    ];
    print(&f.render(&rows, &titles)?)
}

pub(crate) fn rm(ctx: &mut Ctx, a: NamesArgs) -> Result<(), Error> {
    let mut failed = false;
    for n in &a.names {
        let path = format!("/networks/{}", encode_path(n));
        // docker looks the network up first (ingress check), then deletes
        let r = ctx
            .client
            .get_json(&path)
            .and_then(|_| ctx.client.call("DELETE", &path));
        match r {
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

/// `network inspect` / `volume inspect`: raw JSON array (daemon's key order) or a template.
pub(crate) fn inspect(ctx: &mut Ctx, a: NamesFormatArgs, kind: &str) -> Result<(), Error> {
    let tmpl = match a.format.as_deref() {
        None | Some("") | Some("json") => None,
        Some(f) => Some(Template::parse(f)?),
    };
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for n in &a.names {
        let path = format!("/{kind}s/{}", encode_path(n));
        match ctx.client.request("GET", &path, &[], Payload::None) {
            Ok(resp) => {
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut resp.into_body(), &mut body)
                    .map_err(Error::Stream)?;
                items.push(body);
            }
            Err(e) if e.is_daemon_error() => errors.push(e),
            Err(e) => return Err(e),
        }
    }
    match tmpl {
        Some(t) => {
            for raw in &items {
                let v: Value =
                    serde_json::from_slice(raw).map_err(|e| Error::BadJson(e.to_string()))?;
                println(&t.render(&v)?)?;
            }
        }
        None if items.is_empty() => println("[]")?,
        None => {
            let parts: Vec<String> = items
                .iter()
                .map(|r| format!("    {}", indent_json(r, 1)))
                .collect();
            println(&format!("[\n{}\n]", parts.join(",\n")))?;
        }
    }
    for e in &errors {
        eprintln!("Error response from daemon: {e}");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Exit(1))
    }
}

pub(crate) fn connect(ctx: &mut Ctx, a: NetworkConnectArgs) -> Result<(), Error> {
    let mut endpoint = json!({"Aliases": a.alias});
    if let Some(ip) = &a.ip {
        endpoint["IPAMConfig"] = json!({"IPv4Address": ip});
    }
    let body = json!({"Container": a.container, "EndpointConfig": endpoint});
    ctx.client
        .request(
            "POST",
            &format!("/networks/{}/connect", encode_path(&a.network)),
            &[],
            Payload::Json(&body),
        )?
        .drain()
}

pub(crate) fn disconnect(ctx: &mut Ctx, a: NetworkDisconnectArgs) -> Result<(), Error> {
    let body = json!({"Container": a.container, "Force": a.force});
    ctx.client
        .request(
            "POST",
            &format!("/networks/{}/disconnect", encode_path(&a.network)),
            &[],
            Payload::Json(&body),
        )?
        .drain()
}
