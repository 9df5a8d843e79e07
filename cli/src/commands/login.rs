//! `login` / `logout`: the daemon validates credentials (`POST /auth`), and they are stored in
//! `~/.docker/config.json` as docker stores them without a credential helper.

use std::io::{BufRead, IsTerminal, Write};

use base64::Engine;
use serde_json::{Value, json};

use crate::Ctx;
use crate::auth::registry_key;
use crate::cli::{LoginArgs, LogoutArgs};
use crate::error::Error;
use crate::output::println;

fn read_line(prompt: &str, echo: bool) -> Result<String, Error> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if tty {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    }
    let saved = if tty && !echo {
        rustix::termios::tcgetattr(&stdin).ok()
    } else {
        None
    };
    if let Some(s) = &saved {
        let mut quiet = s.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(s) = &saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, s);
        eprintln!();
    }
    r.map_err(|e| Error::Usage(format!("reading {}: {e}", prompt.trim_end_matches(": "))))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn config_path(ctx: &Ctx) -> std::path::PathBuf {
    ctx.config_dir.join("config.json")
}

fn load_config(ctx: &Ctx) -> Value {
    std::fs::read(config_path(ctx))
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_else(|| json!({"auths": {}}))
}

/// Writes config.json atomically with mode 0600 (it holds credentials).
fn save_config(ctx: &Ctx, cfg: &Value) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = config_path(ctx);
    let io = |e: std::io::Error| Error::Usage(format!("saving {}: {e}", path.display()));
    std::fs::create_dir_all(&ctx.config_dir).map_err(io)?;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    let text = serde_json::to_string_pretty(cfg)
        .unwrap_or_default()
        .replace("  ", "\t");
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

pub(crate) fn login(ctx: &mut Ctx, a: LoginArgs) -> Result<(), Error> {
    let server = a.server.clone().unwrap_or_else(|| "docker.io".into());
    let key = registry_key(&server).to_string();
    let user = match a.username.clone() {
        Some(u) => u,
        None => read_line("Username: ", true)?,
    };
    let password = match (&a.password, a.password_stdin) {
        (Some(_), true) => {
            return Err(Error::Usage(
                "--password and --password-stdin are mutually exclusive".into(),
            ));
        }
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.clone()
        }
        (None, true) => {
            let mut p = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut p)
                .map_err(|e| Error::Usage(format!("reading password: {e}")))?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => read_line("Password: ", false)?,
    };
    if user.is_empty() || password.is_empty() {
        return Err(Error::Usage("username and password are required".into()));
    }
    let resp = ctx.client.post_json(
        "/auth",
        &json!({"username": user, "password": password, "serveraddress": key}),
    )?;
    let mut cfg = load_config(ctx);
    if !cfg["auths"].is_object() {
        cfg["auths"] = json!({});
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    cfg["auths"][key.as_str()] = json!({"auth": auth});
    save_config(ctx, &cfg)?;
    eprintln!(
        "WARNING! Your credentials are stored unencrypted in '{}'.",
        config_path(ctx).display()
    );
    println(
        resp["Status"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("Login Succeeded"),
    )
}

pub(crate) fn logout(ctx: &mut Ctx, a: LogoutArgs) -> Result<(), Error> {
    let server = a.server.clone().unwrap_or_else(|| "docker.io".into());
    let key = registry_key(&server).to_string();
    let mut cfg = load_config(ctx);
    let removed = cfg["auths"]
        .as_object_mut()
        .and_then(|m| m.remove(&key))
        .is_some();
    if !removed {
        return println(&format!("Not logged in to {key}"));
    }
    save_config(ctx, &cfg)?;
    println(&format!("Removing login credentials for {key}"))
}
