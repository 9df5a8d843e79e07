//! Create bodies as the docker CLI and docker-py send them, moby's
//! validation messages, and the status and time formats of inspect and list.

use super::validate::*;
use super::*;

/// What `docker run --rm -it busybox sh` sends (CLI 28.2, captured).
const CLI_BODY: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":true,
    "AttachStdout":true,"AttachStderr":true,"Tty":true,"OpenStdin":true,"StdinOnce":true,
    "Env":null,"Cmd":["sh"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,
    "OnBuild":null,"Labels":{},
    "HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},
    "NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},
    "AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[50,120],
    "CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],
    "ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,
    "PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,
    "SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"",
    "CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,
    "BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],
    "BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,
    "CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"",
    "Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,
    "MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":null,"PidsLimit":null,
    "Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,
    "MaskedPaths":null,"ReadonlyPaths":null},
    "NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,
    "Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"",
    "EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"",
    "GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}"#;

fn parse(body: &str) -> CreateRequest {
    serde_json::from_str(body).unwrap()
}

#[test]
fn decodes_what_the_docker_cli_sends() {
    let req = parse(CLI_BODY);
    assert_eq!(req.config.image, "busybox");
    assert_eq!(req.config.cmd.as_deref(), Some(&["sh".to_owned()][..]));
    assert_eq!(req.config.entrypoint, None);
    assert!(req.config.tty && req.config.stdin_once);
    assert!(req.host_config.auto_remove);
    assert_eq!(req.host_config.console_size, Some([50, 120]));
    assert_eq!(req.host_config.memory_swappiness, Some(-1));
    assert_eq!(req.host_config.restart_policy.name, "no");
    assert_eq!(req.host_config.network_mode, "default");
    assert_eq!(req.host_config.masked_paths, None);
    let endpoints = req
        .networking_config
        .clone()
        .unwrap()
        .endpoints_config
        .unwrap();
    assert!(endpoints.contains_key("default"));
    assert_eq!(req.validate(2), Ok(vec![]));
}

#[test]
fn decodes_docker_py_minimal_body_with_nulls_and_unknown_fields() {
    let req = parse(
        r#"{"Image":"busybox","Cmd":"echo hi","AttachStdout":true,"AttachStderr":true,
        "AttachStdin":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,
        "NetworkDisabled":false,"Hostname":null,"Memory":null,"SomethingNew":{"x":1},
        "Healthcheck":{"Test":["CMD","true"],"Interval":1000000000},
        "HostConfig":{"NetworkMode":"default","Memory":null,"Init":true,
                      "Ulimits":[{"Name":"nofile","Soft":1024,"Hard":2048}]}}"#,
    );
    assert_eq!(req.config.cmd.as_deref(), Some(&["echo hi".to_owned()][..]));
    assert_eq!(req.config.hostname, "");
    assert!(req.config.healthcheck.is_some());
    assert_eq!(req.host_config.memory, 0);
    assert_eq!(req.host_config.init, Some(true));
    assert_eq!(req.host_config.ulimits.as_ref().unwrap()[0].hard, 2048);
    assert!(req.networking_config.is_none());
    assert_eq!(req.validate(2), Ok(vec![]));

    let bare = parse(r#"{"Image":"x","HostConfig":null}"#);
    assert_eq!(bare.host_config, HostConfig::default());
}

fn validate_with(host: &str) -> Result<Vec<String>, String> {
    parse(&format!(r#"{{"Image":"x","HostConfig":{host}}}"#)).validate(2)
}

#[test]
fn rejects_bad_values_with_dockers_messages() {
    let cases = [
        (
            r#"{"RestartPolicy":{"Name":"sometimes"}}"#,
            "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'",
        ),
        (
            r#"{"RestartPolicy":{"Name":"always","MaximumRetryCount":3}}"#,
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ),
        (
            r#"{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":-1}}"#,
            "invalid restart policy: maximum retry count cannot be negative",
        ),
        (
            r#"{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}"#,
            "can't create 'AutoRemove' container with restart policy",
        ),
        (r#"{"Memory":-1}"#, "Minimum memory limit allowed is 6MB"),
        (r#"{"Memory":1024}"#, "Minimum memory limit allowed is 6MB"),
        (
            r#"{"Memory":104857600,"MemorySwap":10485760}"#,
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            r#"{"MemorySwap":104857600}"#,
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
        (
            r#"{"MemorySwappiness":101}"#,
            "Invalid value: 101, valid memory swappiness range is 0-100",
        ),
        (
            r#"{"NanoCpus":1000000000,"CpuQuota":50000}"#,
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ),
        (
            r#"{"NanoCpus":1000000000,"CpuPeriod":50000}"#,
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ),
        (
            r#"{"NanoCpus":3000000000}"#,
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
        ),
        (
            r#"{"CpuPeriod":100}"#,
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (
            r#"{"CpuQuota":10}"#,
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ),
        (
            r#"{"CpusetCpus":"1-x"}"#,
            "Invalid value 1-x for cpuset cpus",
        ),
        (
            r#"{"CapAdd":["CAP_FOO"]}"#,
            "unknown capability: \"CAP_FOO\"",
        ),
        (r#"{"CapDrop":["bar"]}"#, "unknown capability: \"CAP_BAR\""),
        (
            r#"{"SecurityOpt":["bogus"]}"#,
            "invalid --security-opt 1: \"bogus\"",
        ),
        (
            r#"{"SecurityOpt":["no-new-privileges=maybe"]}"#,
            "invalid --security-opt 2: \"no-new-privileges=maybe\"",
        ),
        (
            r#"{"Ulimits":[{"Name":"nofiles","Soft":1,"Hard":2}]}"#,
            "invalid ulimit type: nofiles",
        ),
        (
            r#"{"Ulimits":[{"Name":"nofile","Soft":3,"Hard":2}]}"#,
            "ulimit soft limit must be less than or equal to hard limit: 3 > 2",
        ),
        (
            r#"{"OomScoreAdj":1001}"#,
            "Invalid value 1001, range for oom score adj is [-1000, 1000]",
        ),
        (r#"{"ShmSize":-1}"#, "SHM size can not be less than 0"),
        (
            r#"{"BlkioWeight":5}"#,
            "Range of blkio weight is from 10 to 1000",
        ),
        (
            r#"{"LogConfig":{"Type":"syslog"}}"#,
            "logger: no log driver named 'syslog' is registered",
        ),
    ];
    for (host, message) in cases {
        assert_eq!(validate_with(host), Err(message.to_owned()), "{host}");
    }
    let config_cases = [
        (
            r#"{"Image":"x","WorkingDir":"tmp"}"#,
            "the working directory 'tmp' is invalid, it needs to be an absolute path",
        ),
        (
            r#"{"Image":"x","Env":["A=1","=b"]}"#,
            "invalid environment variable: =b",
        ),
    ];
    for (body, message) in config_cases {
        assert_eq!(parse(body).validate(2), Err(message.to_owned()), "{body}");
    }
    let bad_signal = parse(r#"{"Image":"x","StopSignal":"SIGFOO"}"#).validate(2);
    assert_eq!(bad_signal, Err("Invalid signal: SIGFOO".to_owned()));
}

#[test]
fn accepts_good_values() {
    for host in [
        r#"{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}}"#,
        r#"{"RestartPolicy":{"Name":"unless-stopped"}}"#,
        r#"{"Memory":104857600,"MemorySwap":-1}"#,
        r#"{"NanoCpus":1500000000}"#,
        r#"{"CpuQuota":50000,"CpuPeriod":100000,"CpusetCpus":"0-1,3"}"#,
        r#"{"CapAdd":["net_admin","ALL"],"CapDrop":["CAP_CHOWN"]}"#,
        r#"{"SecurityOpt":["no-new-privileges:true","seccomp=unconfined","label=disable"]}"#,
        r#"{"Tmpfs":{"/run":"rw,size=64m"},"LogConfig":{"Type":"json-file"}}"#,
    ] {
        assert_eq!(validate_with(host), Ok(vec![]), "{host}");
    }
}

#[test]
fn signals_parse_like_moby() {
    assert_eq!(parse_signal("SIGTERM"), Ok(15));
    assert_eq!(parse_signal("term"), Ok(15));
    assert_eq!(parse_signal("9"), Ok(9));
    assert_eq!(parse_signal("SIGRTMIN+3"), Ok(37));
    assert_eq!(parse_signal("RTMAX-1"), Ok(63));
    assert_eq!(parse_signal("RTMAX"), Ok(64));
    assert_eq!(parse_signal("0"), Err("Invalid signal: 0".to_owned()));
    assert_eq!(
        parse_signal("RTMIN+15"),
        Err("Invalid signal: RTMIN+15".to_owned())
    );
}

#[test]
fn security_opts_parse_like_moby() {
    let opts = parse_security_opts(&[
        "no-new-privileges".to_owned(),
        "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}".to_owned(),
        "apparmor=unconfined".to_owned(),
    ])
    .unwrap();
    assert!(opts.no_new_privileges);
    assert_eq!(
        opts.seccomp_profile.as_deref(),
        Some("{\"defaultAction\":\"SCMP_ACT_ALLOW\"}")
    );
    assert_eq!(opts.apparmor_profile.as_deref(), Some("unconfined"));
    let off = parse_security_opts(&["no-new-privileges=false".to_owned()]).unwrap();
    assert!(!off.no_new_privileges);
}

#[test]
fn human_durations_match_go_units() {
    let cases = [
        (0, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5399, "About an hour"),
        (5400, "2 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (14 * 24 * 3600, "2 weeks"),
        (60 * 24 * 3600, "2 months"),
        (2 * 365 * 24 * 3600, "2 years"),
    ];
    for (secs, text) in cases {
        assert_eq!(human_duration(Duration::from_secs(secs)), text, "{secs}s");
    }
    assert_eq!(
        human_duration(Duration::from_millis(999)),
        "Less than a second"
    );
}

#[test]
fn status_text_matches_moby_state_string() {
    let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let ago = |s| Some(now - Duration::from_secs(s));
    let created = StatusFacts::default();
    assert_eq!(status_text(&created, now), "Created");
    let running = StatusFacts {
        running: true,
        started_at: ago(5),
        ..Default::default()
    };
    assert_eq!(status_text(&running, now), "Up 5 seconds");
    let paused = StatusFacts {
        paused: true,
        ..running.clone()
    };
    assert_eq!(status_text(&paused, now), "Up 5 seconds (Paused)");
    let healthy = StatusFacts {
        health: Some("healthy".into()),
        ..running.clone()
    };
    assert_eq!(status_text(&healthy, now), "Up 5 seconds (healthy)");
    let exited = StatusFacts {
        exit_code: 137,
        started_at: ago(600),
        finished_at: ago(3),
        ..Default::default()
    };
    assert_eq!(status_text(&exited, now), "Exited (137) 3 seconds ago");
    let restarting = StatusFacts {
        running: true,
        restarting: true,
        exit_code: 1,
        started_at: ago(70),
        finished_at: ago(65),
        ..Default::default()
    };
    assert_eq!(
        status_text(&restarting, now),
        "Restarting (1) About a minute ago"
    );
    let dead = StatusFacts {
        dead: true,
        ..exited.clone()
    };
    assert_eq!(status_text(&dead, now), "Dead");
}

#[test]
fn times_format_like_go() {
    assert_eq!(rfc3339_nano(None), "0001-01-01T00:00:00Z");
    let t = UNIX_EPOCH + Duration::new(1_795_838_933, 120_000_000);
    assert_eq!(rfc3339_nano(Some(t)), "2026-11-28T04:08:53.12Z");
    let whole = UNIX_EPOCH + Duration::from_secs(1_795_838_933);
    assert_eq!(rfc3339_nano(Some(whole)), "2026-11-28T04:08:53Z");
    assert_eq!(unix_seconds(t), 1_795_838_933);
}

#[test]
fn inspect_serializes_dockers_field_names() {
    let inspect = ContainerInspect {
        id: "abc".into(),
        created: rfc3339_nano(None),
        path: "sh".into(),
        args: vec![],
        state: ContainerState {
            status: "created".into(),
            running: false,
            paused: false,
            restarting: false,
            oom_killed: false,
            dead: false,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
        },
        image: "sha256:1".into(),
        resolv_conf_path: String::new(),
        hostname_path: String::new(),
        hosts_path: String::new(),
        log_path: "/x/abc-json.log".into(),
        name: "/web".into(),
        restart_count: 0,
        driver: "overlay2".into(),
        platform: "linux".into(),
        mount_label: String::new(),
        process_label: String::new(),
        app_armor_profile: String::new(),
        exec_ids: None,
        host_config: parse(CLI_BODY).host_config,
        graph_driver: GraphDriver::default(),
        size_rw: None,
        size_root_fs: None,
        mounts: vec![],
        config: parse(CLI_BODY).config,
        network_settings: NetworkSettings::default(),
    };
    let value = serde_json::to_value(&inspect).unwrap();
    assert_eq!(value["State"]["OOMKilled"], false);
    assert_eq!(value["Name"], "/web");
    assert_eq!(value["ExecIDs"], serde_json::Value::Null);
    assert_eq!(value["HostConfig"]["UTSMode"], "");
    assert_eq!(value["HostConfig"]["NanoCpus"], 0);
    assert_eq!(value["HostConfig"]["MemorySwappiness"], -1);
    assert_eq!(value["HostConfig"]["RestartPolicy"]["Name"], "no");
    assert_eq!(value["Config"]["Cmd"][0], "sh");
    assert_eq!(value["Config"]["Entrypoint"], serde_json::Value::Null);
    assert_eq!(value["NetworkSettings"]["IPAddress"], "");
    assert!(value.get("SizeRw").is_none());
}

#[test]
fn create_defaults_are_filled_like_moby() {
    let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let mut req = parse(CLI_BODY);
    req.host_config.memory = 64 << 20;
    req.host_config.cpu_shares = 1;
    req.apply_defaults(id, "hosty");
    assert_eq!(req.config.hostname, "0123456789ab");
    assert_eq!(req.host_config.network_mode, "bridge");
    assert_eq!(req.host_config.log_config.r#type, "json-file");
    assert_eq!(req.host_config.restart_policy.name, "no");
    assert_eq!(req.host_config.shm_size, 64 << 20);
    assert_eq!(req.host_config.memory_swap, 128 << 20);
    assert_eq!(req.host_config.cpu_shares, 2);
    assert_eq!(req.host_config.oom_kill_disable, Some(false));

    let mut host_net = parse(r#"{"Image":"x","HostConfig":{"NetworkMode":"host"}}"#);
    host_net.apply_defaults(id, "hosty");
    assert_eq!(host_net.config.hostname, "hosty");
    let mut named = parse(r#"{"Image":"x","Hostname":"web"}"#);
    named.apply_defaults(id, "hosty");
    assert_eq!(named.config.hostname, "web");
}

#[test]
fn oom_kill_disable_without_memory_limit_warns() {
    let req = parse(r#"{"Image":"x","HostConfig":{"OomKillDisable":true}}"#);
    assert_eq!(req.validate(2).unwrap().len(), 1);
}

#[test]
fn list_command_joins_path_and_args() {
    assert_eq!(
        summary_command("sh", &["-c".to_owned(), "echo hi".to_owned()]),
        "sh -c 'echo hi'"
    );
    assert_eq!(summary_command("true", &[]), "true");
}
