//! A minimal leveled logger writing one line per message to stderr.
//!
//! The daemon needs little more than "what happened, when, how bad"; a
//! process-wide level filter set once at start is enough for now.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::SystemTime;

use crate::config::LogLevel;

static MAX_LEVEL: AtomicU8 = AtomicU8::new(LogLevel::Info as u8);

pub(crate) fn set_level(level: LogLevel) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

pub(crate) fn enabled(level: LogLevel) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

pub(crate) fn write(level: LogLevel, args: fmt::Arguments<'_>) {
    let now = humantime::format_rfc3339_millis(SystemTime::now());
    // One write per line so lines from concurrent tasks do not interleave.
    let line = format!("{now} {:<5} {args}\n", level.as_str());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

macro_rules! log_at {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::write($level, format_args!($($arg)*))
        }
    };
}
macro_rules! error { ($($arg:tt)*) => { $crate::log::log_at!($crate::config::LogLevel::Error, $($arg)*) }; }
macro_rules! warning { ($($arg:tt)*) => { $crate::log::log_at!($crate::config::LogLevel::Warn, $($arg)*) }; }
macro_rules! info { ($($arg:tt)*) => { $crate::log::log_at!($crate::config::LogLevel::Info, $($arg)*) }; }
macro_rules! debug { ($($arg:tt)*) => { $crate::log::log_at!($crate::config::LogLevel::Debug, $($arg)*) }; }

pub(crate) use {debug, error, info, log_at, warning};
