//! Lowering of `linux.seccomp` to a per-ABI policy, and code generation.
//!
//! Lowering resolves every rule's names per ABI and groups the rules by
//! syscall number. Code generation then writes, for each ABI, a binary
//! search over the syscall number: the number space is cut into intervals
//! that share one outcome (runs of consecutive allowed calls become one
//! interval), and each syscall with argument rules gets its own interval
//! whose body tests the rules in order.
//!
//! The program is written back to front, so every jump target is already
//! placed when its jump is written and the exact distance is known: a
//! conditional jump (8-bit offsets) whose target is too far goes through a
//! `ja` trampoline (32-bit offset) written right after it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use libc::sock_filter;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

use super::SeccompError;
use super::syscalls::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, Abi, X32_SYSCALL_BIT};

/// The kernel's limit on the length of a classic BPF program.
pub(crate) const MAX_INSTRUCTIONS: usize = libc::BPF_MAXINSNS as usize;
/// The largest errno the kernel returns (`MAX_ERRNO`).
const MAX_ERRNO: u32 = 4095;

const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

/// What a call from an ABI the filter does not cover gets (libseccomp's
/// "bad arch" action; we kill the whole process rather than one thread).
const RET_BAD_ARCH: u32 = RET_KILL_PROCESS;

/// Offsets into `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const fn arg_low(index: u8) -> u32 {
    16 + 8 * index as u32
}
const fn arg_high(index: u8) -> u32 {
    arg_low(index) + 4
}

// Classic BPF opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// The compiled program and the `seccomp(2)` flags to load it with.
pub(crate) fn compile(spec: &LinuxSeccomp) -> Result<(Vec<sock_filter>, u32), SeccompError> {
    if !cfg!(target_arch = "x86_64") {
        return Err(SeccompError::UnsupportedHost);
    }
    let policy = Policy::lower(spec)?;
    let instructions = Emitter::default().program(&policy);
    if instructions.len() > MAX_INSTRUCTIONS {
        return Err(SeccompError::TooManyInstructions {
            count: instructions.len(),
        });
    }
    Ok((instructions, policy.flags))
}

/// One argument comparison, as libseccomp's `scmp_arg_cmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cond {
    index: u8,
    op: LinuxSeccompOperator,
    /// The operand (the mask for `MASKED_EQ`).
    value: u64,
    /// `MASKED_EQ`'s expected value.
    value_two: u64,
}

/// A rule with argument comparisons: all must hold for `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    conds: Vec<Cond>,
    action: u32,
}

/// What one syscall number gets.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    /// The same action whatever the arguments.
    Action(u32),
    /// Argument rules, tried in order, then `fallback`.
    Rules { rules: Vec<Rule>, fallback: u32 },
}

/// The rules gathered for one syscall number.
#[derive(Debug, Default)]
struct Entry {
    rules: Vec<Rule>,
    /// The first rule without argument comparisons, if any.
    unconditional: Option<u32>,
}

#[derive(Debug)]
struct Policy {
    default: u32,
    flags: u32,
    /// Every covered ABI (always including x86_64) with its per-number rules.
    abis: BTreeMap<Abi, BTreeMap<u32, Entry>>,
}

impl Policy {
    fn lower(spec: &LinuxSeccomp) -> Result<Self, SeccompError> {
        if let Some(path) = spec.listener_path() {
            return Err(SeccompError::ListenerUnsupported { path: path.clone() });
        }
        let default = action_value(spec.default_action(), spec.default_errno_ret())?;

        let mut flags = 0;
        for flag in spec.flags().iter().flatten() {
            flags |= match flag {
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                    libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                }
                // The filter is loaded by the single-threaded container init.
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
                flag @ LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                    return Err(SeccompError::UnsupportedFlag { flag: *flag });
                }
            } as u32;
        }

        let mut abis = BTreeSet::from([Abi::X86_64]);
        for arch in spec.architectures().iter().flatten() {
            abis.insert(match arch {
                Arch::ScmpArchNative | Arch::ScmpArchX86_64 => Abi::X86_64,
                Arch::ScmpArchX86 => Abi::X86,
                Arch::ScmpArchX32 => Abi::X32,
                other => return Err(SeccompError::UnsupportedArchitecture { arch: *other }),
            });
        }
        let mut abis: BTreeMap<Abi, BTreeMap<u32, Entry>> =
            abis.into_iter().map(|abi| (abi, BTreeMap::new())).collect();

        for (rule, syscall) in spec.syscalls().iter().flatten().enumerate() {
            let action = action_value(syscall.action(), syscall.errno_ret())?;
            let alternatives = alternatives(rule, syscall.args().as_deref().unwrap_or(&[]))?;
            for (abi, entries) in &mut abis {
                for name in syscall.names() {
                    // Names this ABI does not have are skipped, as libseccomp does.
                    let Some(nr) = abi.resolve(name) else {
                        continue;
                    };
                    let entry = entries.entry(nr).or_default();
                    for conds in &alternatives {
                        if conds.is_empty() {
                            entry.unconditional.get_or_insert(action);
                        } else {
                            entry.rules.push(Rule {
                                conds: conds.clone(),
                                action,
                            });
                        }
                    }
                }
            }
        }
        Ok(Policy {
            default,
            flags,
            abis,
        })
    }

    /// The outcome of one syscall number: argument rules first, in spec
    /// order, then the syscall's unconditional rule (libseccomp checks the
    /// more specific rules first), then the default action.
    fn body(&self, entry: &Entry) -> Body {
        let fallback = entry.unconditional.unwrap_or(self.default);
        let mut rules = entry.rules.clone();
        // Trailing rules that end where the fallback would are dead weight.
        while rules.last().is_some_and(|r| r.action == fallback) {
            rules.pop();
        }
        if rules.is_empty() {
            Body::Action(fallback)
        } else {
            Body::Rules { rules, fallback }
        }
    }

    /// The number space `0..=u32::MAX` cut into intervals of one body, each
    /// given by its first number.
    fn intervals(&self, entries: &BTreeMap<u32, Entry>) -> Vec<(u32, Body)> {
        fn push(out: &mut Vec<(u32, Body)>, start: u32, body: Body) {
            if out.last().is_some_and(|(s, _)| *s == start) {
                // An empty gap between two consecutive numbers.
                out.pop();
            }
            let merges = matches!(
                (out.last(), &body),
                (Some((_, Body::Action(a))), Body::Action(b)) if a == b
            );
            if !merges {
                out.push((start, body));
            }
        }
        let mut out = vec![(0, Body::Action(self.default))];
        for (&nr, entry) in entries {
            push(&mut out, nr, self.body(entry));
            if let Some(next) = nr.checked_add(1) {
                push(&mut out, next, Body::Action(self.default));
            }
        }
        out
    }
}

/// The `SECCOMP_RET_*` value of an OCI action.
fn action_value(action: LinuxSeccompAction, errno: Option<u32>) -> Result<u32, SeccompError> {
    let data = || {
        let errno = errno.unwrap_or(libc::EPERM as u32);
        if errno > MAX_ERRNO {
            return Err(SeccompError::ErrnoOutOfRange { errno });
        }
        Ok(errno)
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | data()?,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | data()?,
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::UnsupportedAction { action });
        }
    })
}

/// The argument comparisons of one OCI rule as alternatives (OR) of
/// conjunctions (AND). Like runc, a rule that compares the same argument
/// twice is taken as one alternative per comparison (libseccomp allows one
/// comparison per argument per rule).
fn alternatives(rule: usize, args: &[LinuxSeccompArg]) -> Result<Vec<Vec<Cond>>, SeccompError> {
    let conds = args
        .iter()
        .map(|arg| {
            let index = u8::try_from(arg.index()).ok().filter(|i| *i < 6).ok_or(
                SeccompError::ArgIndexOutOfRange {
                    rule,
                    index: arg.index(),
                },
            )?;
            Ok(Cond {
                index,
                op: arg.op(),
                value: arg.value(),
                value_two: arg.value_two().unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, SeccompError>>()?;
    let mut seen = [false; 6];
    let repeats = conds
        .iter()
        .any(|c| std::mem::replace(&mut seen[c.index as usize], true));
    Ok(if repeats {
        conds.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![conds]
    })
}

/// A jump target: an instruction's index counted from the program's end.
type Label = usize;

/// Writes a program back to front (see the module docs).
#[derive(Default)]
struct Emitter {
    reversed: Vec<sock_filter>,
    /// The most recent `ret` of each value, to share while it is near.
    rets: HashMap<u32, Label>,
}

impl Emitter {
    fn program(mut self, policy: &Policy) -> Vec<sock_filter> {
        let mut trees = Vec::new();
        for (abi, entries) in policy.abis.iter().rev() {
            let mut tree = self.tree(&policy.intervals(entries), abi.wide_args());
            if *abi == Abi::X86 {
                // x86_64 and x32 share the number load below; x86 has its own.
                tree = self.before(stmt(LD_W_ABS, DATA_NR), tree);
            }
            trees.push((*abi, tree));
        }
        let tree = |abi| trees.iter().find(|(a, _)| *a == abi).map(|(_, l)| *l);

        let bad_arch = self.ret(RET_BAD_ARCH);
        let native = tree(Abi::X86_64).expect("x86_64 is always covered");
        let x32 = tree(Abi::X32).unwrap_or(bad_arch);
        let split = self.jump(JGE_K, X32_SYSCALL_BIT, x32, native);
        let x86_64 = self.before(stmt(LD_W_ABS, DATA_NR), split);
        let other = match tree(Abi::X86) {
            Some(x86) => self.jump(JEQ_K, AUDIT_ARCH_I386, x86, bad_arch),
            None => bad_arch,
        };
        let dispatch = self.jump(JEQ_K, AUDIT_ARCH_X86_64, x86_64, other);
        self.before(stmt(LD_W_ABS, DATA_ARCH), dispatch);

        self.reversed.reverse();
        self.reversed
    }

    /// Binary search over `intervals` (sorted, the first starting at 0),
    /// with the syscall number in the accumulator.
    fn tree(&mut self, intervals: &[(u32, Body)], wide: bool) -> Label {
        if let [(_, body)] = intervals {
            return self.body(body, wide);
        }
        let mid = intervals.len() / 2;
        let high = self.tree(&intervals[mid..], wide);
        let low = self.tree(&intervals[..mid], wide);
        self.jump(JGE_K, intervals[mid].0, high, low)
    }

    fn body(&mut self, body: &Body, wide: bool) -> Label {
        match body {
            Body::Action(action) => self.ret(*action),
            Body::Rules { rules, fallback } => {
                let mut next = self.ret(*fallback);
                for rule in rules.iter().rev() {
                    let matched = self.ret(rule.action);
                    next = rule
                        .conds
                        .iter()
                        .rev()
                        .fold(matched, |then, cond| self.cond(cond, then, next, wide));
                }
                next
            }
        }
    }

    /// Code that goes to `t` if `c` holds and to `f` if not. On the 32-bit
    /// ABIs only the low words are compared.
    fn cond(&mut self, c: &Cond, t: Label, f: Label, wide: bool) -> Label {
        use LinuxSeccompOperator as Op;
        let (lo, hi) = (c.value as u32, (c.value >> 32) as u32);
        match c.op {
            Op::ScmpCmpNe => self.cond(
                &Cond {
                    op: Op::ScmpCmpEq,
                    ..*c
                },
                f,
                t,
                wide,
            ),
            Op::ScmpCmpLt => self.cond(
                &Cond {
                    op: Op::ScmpCmpGe,
                    ..*c
                },
                f,
                t,
                wide,
            ),
            Op::ScmpCmpLe => self.cond(
                &Cond {
                    op: Op::ScmpCmpGt,
                    ..*c
                },
                f,
                t,
                wide,
            ),
            Op::ScmpCmpEq => {
                let low = self.jump(JEQ_K, lo, t, f);
                let low = self.before(stmt(LD_W_ABS, arg_low(c.index)), low);
                if !wide {
                    return low;
                }
                let high = self.jump(JEQ_K, hi, low, f);
                self.before(stmt(LD_W_ABS, arg_high(c.index)), high)
            }
            Op::ScmpCmpGt | Op::ScmpCmpGe => {
                let code = if c.op == Op::ScmpCmpGt { JGT_K } else { JGE_K };
                let low = self.jump(code, lo, t, f);
                let low = self.before(stmt(LD_W_ABS, arg_low(c.index)), low);
                if !wide {
                    return low;
                }
                // The high word is greater, or equal and the low word decides.
                let equal = self.jump(JEQ_K, hi, low, f);
                let high = self.jump(JGT_K, hi, t, equal);
                self.before(stmt(LD_W_ABS, arg_high(c.index)), high)
            }
            Op::ScmpCmpMaskedEq => {
                let (want_lo, want_hi) = (c.value_two as u32, (c.value_two >> 32) as u32);
                let low = self.jump(JEQ_K, want_lo, t, f);
                let low = self.before(stmt(AND_K, lo), low);
                let low = self.before(stmt(LD_W_ABS, arg_low(c.index)), low);
                if !wide {
                    return low;
                }
                let high = self.jump(JEQ_K, want_hi, low, f);
                let high = self.before(stmt(AND_K, hi), high);
                self.before(stmt(LD_W_ABS, arg_high(c.index)), high)
            }
        }
    }

    /// The label the next instruction written will have.
    fn next(&self) -> Label {
        self.reversed.len()
    }

    fn push(&mut self, insn: sock_filter) -> Label {
        self.reversed.push(insn);
        self.reversed.len() - 1
    }

    /// A `ret` of `action`, shared with an earlier one that is close enough
    /// to reach with a short jump.
    fn ret(&mut self, action: u32) -> Label {
        match self.rets.get(&action) {
            Some(&label) if self.next() - label <= 200 => label,
            _ => {
                let label = self.push(stmt(RET_K, action));
                self.rets.insert(action, label);
                label
            }
        }
    }

    /// A conditional jump to `t` (condition true) or `f`, with trampolines
    /// for targets beyond the 8-bit offsets. Returns the entry label.
    fn jump(&mut self, code: u16, k: u32, mut t: Label, mut f: Label) -> Label {
        if t == f {
            return self.goto(t);
        }
        loop {
            let at = self.next();
            if at - t - 1 > u8::MAX as usize {
                t = self.push(stmt(JA, (at - t - 1) as u32));
            } else if at - f - 1 > u8::MAX as usize {
                f = self.push(stmt(JA, (at - f - 1) as u32));
            } else {
                let (jt, jf) = ((at - t - 1) as u8, (at - f - 1) as u8);
                return self.push(sock_filter { code, jt, jf, k });
            }
        }
    }

    /// `insn`, followed by the code at `then`.
    fn before(&mut self, insn: sock_filter, then: Label) -> Label {
        self.goto(then);
        self.push(insn)
    }

    /// Entry code that continues at `target`.
    fn goto(&mut self, target: Label) -> Label {
        let at = self.next();
        if target + 1 == at {
            target
        } else {
            self.push(stmt(JA, (at - target - 1) as u32))
        }
    }
}

const fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::tests::{Data, run_insns};

    #[test]
    fn seccomp_jumps_beyond_255_go_through_trampolines() {
        let mut e = Emitter::default();
        let far = e.push(stmt(RET_K, 1));
        for _ in 0..300 {
            e.push(stmt(RET_K, 2));
        }
        let near = e.push(stmt(RET_K, 3));
        let false_far = e.jump(JEQ_K, 5, near, far);
        let true_far = e.jump(JEQ_K, 7, far, false_far);
        e.before(stmt(LD_W_ABS, DATA_NR), true_far);
        e.reversed.reverse();
        let run = |nr| {
            let data = Data {
                nr,
                arch: AUDIT_ARCH_X86_64,
                args: [0; 6],
            };
            run_insns(&e.reversed, &data)
        };
        assert_eq!(run(7), 1);
        assert_eq!(run(5), 3);
        assert_eq!(run(6), 1);
        assert_eq!(e.reversed.iter().filter(|i| i.code == JA).count(), 2);
    }
}
