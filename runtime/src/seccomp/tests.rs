//! Compiler tests: errors, program shape, a reference interpreter run over
//! every syscall number, and real loads in forked children whose syscalls
//! must fail (or not) with the expected errno.

use std::collections::BTreeSet;
use std::ffi::CString;

use libc::c_long;
use oci_spec::runtime::LinuxSeccomp;

use super::compile::MAX_INSTRUCTIONS;
use super::syscalls::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, Abi, X32_SYSCALL_BIT};
use super::*;

const DOCKER_DEFAULT: &str = include_str!("../../tests/fixtures/docker-default-seccomp.json");

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;

fn parse(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).expect("valid LinuxSeccomp")
}

fn docker() -> LinuxSeccomp {
    parse(DOCKER_DEFAULT)
}

// ---------------------------------------------------------------------------
// A classic BPF interpreter for the instructions the compiler emits, to
// check the program's decisions without loading it.

pub(super) struct Data {
    pub(super) nr: u32,
    pub(super) arch: u32,
    pub(super) args: [u64; 6],
}

fn run(program: &SeccompProgram, data: &Data) -> u32 {
    run_insns(program.instructions(), data)
}

pub(super) fn run_insns(insns: &[libc::sock_filter], data: &Data) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            0 => data.nr,
            4 => data.arch,
            16..=63 if off % 4 == 0 => {
                let arg = data.args[(off as usize - 16) / 8];
                if off % 8 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            _ => panic!("load of offset {off}"),
        }
    };
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = insns[pc];
        pc += 1;
        let jump = |cond: bool| if cond { i.jt as usize } else { i.jf as usize };
        match i.code {
            0x20 => acc = word(i.k),
            0x54 => acc &= i.k,
            0x05 => pc += i.k as usize,
            0x15 => pc += jump(acc == i.k),
            0x25 => pc += jump(acc > i.k),
            0x35 => pc += jump(acc >= i.k),
            0x06 => return i.k,
            code => panic!("unexpected opcode {code:#x}"),
        }
    }
}

fn x86_64(nr: u32, args: [u64; 6]) -> Data {
    Data {
        nr,
        arch: AUDIT_ARCH_X86_64,
        args,
    }
}

fn nr(name: &str) -> u32 {
    Abi::X86_64.resolve(name).unwrap()
}

// ---------------------------------------------------------------------------
// Compile-time behaviour.

#[test]
fn seccomp_compiles_docker_default_profile() {
    let spec = docker();
    let program = compile(&spec).unwrap();
    let len = program.instructions().len();
    assert!(len < MAX_INSTRUCTIONS, "{len} instructions");
    // A binary search keeps the program far below one check per name.
    assert!(len < 400, "{len} instructions");
    assert_eq!(program.flags(), 0);
}

#[test]
fn seccomp_docker_profile_decides_every_x86_64_syscall() {
    let spec = docker();
    let program = compile(&spec).unwrap();
    let mut allowed = BTreeSet::new();
    let mut conditional = BTreeSet::new();
    for rule in spec.syscalls().iter().flatten() {
        if rule.args().is_some() {
            conditional.extend(rule.names().iter().map(String::as_str));
        } else if rule.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActAllow {
            allowed.extend(rule.names().iter().map(String::as_str));
        }
    }
    let mut checked = 0;
    for n in 0..1024 {
        let name = ::syscalls::x86_64::Sysno::new(n as usize).map(|s| s.name());
        let got = run(&program, &x86_64(n, [0; 6]));
        let want = match name {
            Some("clone3") => RET_ERRNO | 38,
            Some(name) if conditional.contains(name) => continue,
            Some(name) if allowed.contains(name) => RET_ALLOW,
            _ => RET_ERRNO | 1,
        };
        assert_eq!(got, want, "syscall {n} ({name:?})");
        checked += 1;
    }
    assert!(checked > 1000);

    // Argument rules: socket(AF_VSOCK) is refused, other families pass.
    let socket = nr("socket");
    assert_eq!(
        run(&program, &x86_64(socket, [1, 1, 0, 0, 0, 0])),
        RET_ALLOW
    );
    assert_eq!(
        run(&program, &x86_64(socket, [40, 1, 0, 0, 0, 0])),
        RET_ERRNO | 1
    );
    let personality = nr("personality");
    for ok in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(
            run(&program, &x86_64(personality, [ok, 0, 0, 0, 0, 0])),
            RET_ALLOW
        );
    }
    assert_eq!(
        run(&program, &x86_64(personality, [4, 0, 0, 0, 0, 0])),
        RET_ERRNO | 1
    );
    let clone = nr("clone");
    let sigchld = libc::SIGCHLD as u64;
    assert_eq!(
        run(&program, &x86_64(clone, [sigchld, 0, 0, 0, 0, 0])),
        RET_ALLOW
    );
    let newns = (libc::CLONE_NEWNS as u64) | sigchld;
    assert_eq!(
        run(&program, &x86_64(clone, [newns, 0, 0, 0, 0, 0])),
        RET_ERRNO | 1
    );

    // The other ABIs of the profile.
    let i386 = |nr, args| Data {
        nr,
        arch: AUDIT_ARCH_I386,
        args,
    };
    assert_eq!(
        run(&program, &i386(102, [0; 6])),
        RET_ALLOW,
        "x86 socketcall"
    );
    assert_eq!(
        run(&program, &i386(288, [0; 6])),
        RET_ERRNO | 1,
        "x86 keyctl"
    );
    assert_eq!(
        run(&program, &i386(435, [0; 6])),
        RET_ERRNO | 38,
        "x86 clone3"
    );
    let x32_getpid = nr("getpid") | X32_SYSCALL_BIT;
    assert_eq!(run(&program, &x86_64(x32_getpid, [0; 6])), RET_ALLOW);
    let x32_ioctl = 514 | X32_SYSCALL_BIT;
    assert_eq!(run(&program, &x86_64(x32_ioctl, [0; 6])), RET_ALLOW);
    let aarch64 = Data {
        nr: 0,
        arch: 0xc000_00b7,
        args: [0; 6],
    };
    assert_eq!(run(&program, &aarch64), RET_KILL_PROCESS);
}

#[test]
fn seccomp_x32_calls_are_bad_arch_unless_listed() {
    let spec = parse(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}"#);
    let program = compile(&spec).unwrap();
    let getpid = nr("getpid");
    assert_eq!(run(&program, &x86_64(getpid, [0; 6])), RET_ALLOW);
    let x32 = x86_64(getpid | X32_SYSCALL_BIT, [0; 6]);
    assert_eq!(run(&program, &x32), RET_KILL_PROCESS);
    let i386 = Data {
        nr: 20,
        arch: AUDIT_ARCH_I386,
        args: [0; 6],
    };
    assert_eq!(run(&program, &i386), RET_KILL_PROCESS);
}

#[test]
fn seccomp_unknown_syscall_names_are_skipped() {
    let spec = parse(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["no_such_call", "getppid"], "action": "SCMP_ACT_ERRNO"}]}"#,
    );
    let program = compile(&spec).unwrap();
    assert_eq!(run(&program, &x86_64(nr("getppid"), [0; 6])), RET_ERRNO | 1);
}

#[test]
fn seccomp_rules_with_args_come_before_the_unconditional_rule() {
    let spec = parse(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 19},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 17,
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                      {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
             "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 20,
             "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 200, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    let program = compile(&spec).unwrap();
    let getppid = |args| run(&program, &x86_64(nr("getppid"), args));
    assert_eq!(getppid([1, 2, 0, 0, 0, 0]), RET_ERRNO | 17);
    assert_eq!(getppid([1, 3, 0, 0, 0, 0]), RET_ERRNO | 19);
    assert_eq!(getppid([3, 9, 0, 0, 0, 0]), RET_ERRNO | 18);
    // The same argument compared twice in one rule: OR, as in runc.
    assert_eq!(getppid([100, 0, 0, 0, 0, 0]), RET_ERRNO | 20);
    assert_eq!(getppid([200, 0, 0, 0, 0, 0]), RET_ERRNO | 20);
    assert_eq!(getppid([0, 0, 0, 0, 0, 0]), RET_ERRNO | 19);
}

#[test]
fn seccomp_unknown_action_is_a_parse_error() {
    let err = serde_json::from_str::<LinuxSeccomp>(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_EXPLODE"}]}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("SCMP_ACT_EXPLODE"), "{err}");
}

#[test]
fn seccomp_rejects_what_it_cannot_compile() {
    let cases = [
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AARCH64"]}"#,
            "unsupported seccomp architecture SCMP_ARCH_AARCH64",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}"#,
            "unsupported seccomp action SCMP_ACT_NOTIFY",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}"#,
            "seccomp notify listener \"/run/agent.sock\" is not supported",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
            "seccomp rule 0: argument index 6 is out of range 0-5",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}"#,
            "seccomp errno 70000 is out of range 0-4095",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
            "unsupported seccomp filter flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        ),
    ];
    for (json, message) in cases {
        let err = compile(&parse(json)).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn seccomp_flags_are_passed_to_the_kernel() {
    let spec = parse(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]}"#,
    );
    let program = compile(&spec).unwrap();
    assert_eq!(
        program.flags(),
        (libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW) as u32
    );
}

/// A profile with an argument rule on every syscall: more than 255
/// instructions between a branch and its targets, so trampolines are needed.
fn huge_profile(rules_per_call: usize) -> LinuxSeccomp {
    // (Not `Sysno::iter()`: it stops before the last syscall.)
    let names: Vec<_> = (0..1024)
        .filter_map(::syscalls::x86_64::Sysno::new)
        .map(|s| s.name())
        .collect();
    let rules: Vec<_> = (0..rules_per_call)
        .map(|i| {
            serde_json::json!({
                "names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 100 + i,
                "args": [{"index": i % 6, "value": (i as u64) << 32 | 7, "op": "SCMP_CMP_EQ"}],
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": rules,
    }))
    .unwrap()
}

#[test]
fn seccomp_long_jumps_use_trampolines() {
    let program = compile(&huge_profile(1)).unwrap();
    let insns = program.instructions();
    assert!(insns.len() > 1000, "{} instructions", insns.len());
    let trampolines = insns.iter().filter(|i| i.code == 0x05).count();
    assert!(
        trampolines > 0,
        "no long jump in {} instructions",
        insns.len()
    );
    for n in 0..470 {
        let known = ::syscalls::x86_64::Sysno::new(n as usize).is_some();
        let hit = run(&program, &x86_64(n, [7, 0, 0, 0, 0, 0]));
        assert_eq!(hit, if known { RET_ERRNO | 100 } else { RET_ALLOW }, "{n}");
        let miss = run(&program, &x86_64(n, [7 | 1 << 32, 0, 0, 0, 0, 0]));
        assert_eq!(miss, RET_ALLOW, "{n}");
    }
}

#[test]
fn seccomp_too_many_instructions_is_an_error() {
    let err = compile(&huge_profile(3)).unwrap_err();
    assert!(matches!(err, SeccompError::TooManyInstructions { count } if count > 4096));
}

// ---------------------------------------------------------------------------
// Real loads. The program is compiled before `fork`; the child only makes
// raw syscalls and reports the number of the first failed check as its exit
// status (0: all passed).

/// The raw wait status of a forked child that sets no_new_privs, loads
/// `program` and exits with `checks()`.
fn in_child(program: &SeccompProgram, checks: impl Fn() -> i32) -> i32 {
    // SAFETY: the child runs only async-signal-safe code (prctl, seccomp,
    // raw syscalls, _exit) and never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain prctl with integer arguments.
        let code = if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            101
        } else if program.load().is_err() {
            102
        } else {
            checks()
        };
        // SAFETY: _exit ends the child without running the parent's atexit
        // handlers or unwinding.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: status is a valid out-pointer; pid is our child.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    status
}

fn assert_passed(status: i32) {
    assert!(
        libc::WIFEXITED(status),
        "child died: wait status {status:#x}"
    );
    let code = libc::WEXITSTATUS(status);
    assert!(
        code != 101 && code != 102,
        "child could not load the filter ({code})"
    );
    assert_eq!(code, 0, "check #{code} failed in the child");
}

/// `syscall(nr, args...)`: the result, or the errno.
fn sys(nr: c_long, args: [u64; 6]) -> Result<c_long, i32> {
    let [a, b, c, d, e, f] = args;
    // SAFETY: only called with syscalls whose pointer arguments are null or
    // valid for the call.
    let ret = unsafe { libc::syscall(nr, a, b, c, d, e, f) };
    if ret < 0 {
        // SAFETY: errno of this thread.
        Err(unsafe { *libc::__errno_location() })
    } else {
        Ok(ret)
    }
}

/// The 1-based number of the first false check, or 0.
fn first_failure(checks: &[bool]) -> i32 {
    checks.iter().position(|ok| !ok).map_or(0, |i| i as i32 + 1)
}

#[test]
fn seccomp_filter_really_fails_syscalls_with_errno() {
    let spec = parse(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 2, "value": 448, "op": "SCMP_CMP_EQ"}]},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30,
             "args": [{"index": 1, "value": 511, "op": "SCMP_CMP_GT"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
    );
    let program = compile(&spec).unwrap();
    let path = CString::new("/nonexistent-berth-seccomp/dir").unwrap();
    let p = path.as_ptr() as u64;
    let at_fdcwd = libc::AT_FDCWD as u64;
    let status = in_child(&program, || {
        first_failure(&[
            sys(libc::SYS_getppid, [0; 6]) == Err(libc::EPERM),
            sys(libc::SYS_getpid, [0; 6]).is_ok_and(|pid| pid > 0),
            sys(libc::SYS_mkdirat, [at_fdcwd, p, 0o700, 0, 0, 0]) == Err(libc::EACCES),
            // Not matched: the kernel runs the call, the parent does not exist.
            sys(libc::SYS_mkdirat, [at_fdcwd, p, 0o755, 0, 0, 0]) == Err(libc::ENOENT),
            sys(libc::SYS_mkdir, [p, 0o1000, 0, 0, 0, 0]) == Err(libc::EROFS),
            sys(libc::SYS_mkdir, [p, 0o777, 0, 0, 0, 0]) == Err(libc::ENOENT),
            sys(libc::SYS_clone3, [0; 6]) == Err(libc::ENOSYS),
            // x32 is listed: its getppid gets the same rule.
            sys((X32_SYSCALL_BIT | 110) as c_long, [0; 6]) == Err(libc::EPERM),
        ])
    });
    assert_passed(status);
}

#[test]
fn seccomp_filter_compares_64_bit_arguments_in_the_kernel() {
    // Calls that ignore their arguments, each with one comparison.
    let spec = parse(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getuid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 10,
         "args": [{"index": 0, "value": 4294967298, "op": "SCMP_CMP_EQ"}]},
        {"names": ["getgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11,
         "args": [{"index": 0, "value": 4294967298, "op": "SCMP_CMP_NE"}]},
        {"names": ["geteuid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 12,
         "args": [{"index": 1, "value": 4294967296, "op": "SCMP_CMP_GT"}]},
        {"names": ["getegid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
         "args": [{"index": 1, "value": 4294967296, "op": "SCMP_CMP_GE"}]},
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 14,
         "args": [{"index": 2, "value": 4294967296, "op": "SCMP_CMP_LT"}]},
        {"names": ["getpgrp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 15,
         "args": [{"index": 2, "value": 4294967296, "op": "SCMP_CMP_LE"}]},
        {"names": ["gettid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 16,
         "args": [{"index": 5, "value": 280375465083135, "valueTwo": 19791209299968,
                   "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["sched_yield"], "action": "SCMP_ACT_ERRNO", "errnoRet": 17,
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                  {"index": 3, "value": 2, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    // 280375465083135 = 0xff00_0000_00ff, 19791209299968 = 0x1200_0000_0000.
    let program = compile(&spec).unwrap();
    const HI: u64 = 1 << 32;
    let status = in_child(&program, || {
        let at = |nr, i: usize, v: u64| {
            let mut args = [0; 6];
            args[i] = v;
            sys(nr, args)
        };
        let hit = |nr, i, v, errno| at(nr, i, v) == Err(errno);
        let miss = |nr, i, v| at(nr, i, v).is_ok();
        use libc::{
            SYS_getegid as GE, SYS_geteuid as GT, SYS_getgid as NE, SYS_getpgrp as LE,
            SYS_getppid as LT, SYS_gettid as MASKED, SYS_getuid as EQ,
        };
        first_failure(&[
            hit(EQ, 0, HI | 2, 10),
            miss(EQ, 0, 2),
            miss(EQ, 0, (2 * HI) | 2),
            miss(EQ, 0, HI | 3),
            miss(NE, 0, HI | 2),
            hit(NE, 0, 2, 11),
            hit(NE, 0, HI, 11),
            hit(GT, 1, HI | 1, 12),
            hit(GT, 1, 2 * HI, 12),
            miss(GT, 1, HI),
            miss(GT, 1, 0xffff_ffff),
            hit(GE, 1, HI, 13),
            hit(GE, 1, HI | 0xffff_ffff, 13),
            miss(GE, 1, 0xffff_ffff),
            hit(LT, 2, 0xffff_ffff, 14),
            hit(LT, 2, 0, 14),
            miss(LT, 2, HI),
            miss(LT, 2, 2 * HI),
            hit(LE, 2, HI, 15),
            hit(LE, 2, 5, 15),
            miss(LE, 2, HI | 1),
            hit(MASKED, 5, 0x12ab_cdef_0100, 16),
            miss(MASKED, 5, 0x1300_0000_0000),
            miss(MASKED, 5, 0x1200_0000_0001),
            sys(libc::SYS_sched_yield, [1, 0, 0, 2, 0, 0]) == Err(17),
            sys(libc::SYS_sched_yield, [1, 0, 0, 3, 0, 0]).is_ok(),
            sys(libc::SYS_sched_yield, [0, 0, 0, 2, 0, 0]).is_ok(),
        ])
    });
    assert_passed(status);
}

#[test]
fn seccomp_unlisted_x32_call_kills_the_process() {
    let spec = parse(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#);
    let program = compile(&spec).unwrap();
    let status = in_child(&program, || {
        let _ = sys((X32_SYSCALL_BIT | 39) as c_long, [0; 6]);
        0
    });
    assert!(libc::WIFSIGNALED(status), "wait status {status:#x}");
    assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
}

#[test]
fn seccomp_long_program_loads_and_runs_in_the_kernel() {
    let program = compile(&huge_profile(1)).unwrap();
    let status = in_child(&program, || {
        first_failure(&[
            sys(libc::SYS_getppid, [7, 0, 0, 0, 0, 0]) == Err(100),
            sys(libc::SYS_getppid, [7 | 1 << 32, 0, 0, 0, 0, 0]).is_ok(),
            sys(libc::SYS_clone3, [7, 0, 0, 0, 0, 0]) == Err(100),
        ])
    });
    assert_passed(status);
}

#[test]
fn seccomp_docker_default_profile_in_the_kernel() {
    let program = compile(&docker()).unwrap();
    let key_type = CString::new("user").unwrap();
    let key_desc = CString::new("berth-test").unwrap();
    let (t, d) = (key_type.as_ptr() as u64, key_desc.as_ptr() as u64);
    let status = in_child(&program, || {
        let newuser = libc::CLONE_NEWUSER as u64;
        let clone = sys(
            libc::SYS_clone,
            [newuser | libc::SIGCHLD as u64, 0, 0, 0, 0, 0],
        );
        if clone == Ok(0) {
            // A filter that let clone(CLONE_NEWUSER) through: the new child leaves.
            // SAFETY: _exit in the accidental grandchild.
            unsafe { libc::_exit(0) };
        }
        first_failure(&[
            sys(libc::SYS_getpid, [0; 6]).is_ok_and(|pid| pid > 0),
            sys(libc::SYS_add_key, [t, d, 0, 0, 0, 0]) == Err(libc::EPERM),
            sys(libc::SYS_keyctl, [0, 0, 0, 0, 0, 0]) == Err(libc::EPERM),
            // Docker answers ENOSYS so that glibc falls back to clone.
            sys(libc::SYS_clone3, [0; 6]) == Err(libc::ENOSYS),
            sys(libc::SYS_unshare, [newuser, 0, 0, 0, 0, 0]) == Err(libc::EPERM),
            clone == Err(libc::EPERM),
            sys(libc::SYS_socket, [40, libc::SOCK_STREAM as u64, 0, 0, 0, 0]) == Err(libc::EPERM),
            sys(
                libc::SYS_socket,
                [libc::AF_UNIX as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0],
            )
            .is_ok(),
            sys(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]).is_ok(),
            sys(libc::SYS_personality, [4, 0, 0, 0, 0, 0]) == Err(libc::EPERM),
            sys(libc::SYS_mount, [0; 6]) == Err(libc::EPERM),
        ])
    });
    assert_passed(status);
}
