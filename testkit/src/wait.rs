//! Waiting for a condition that a real system reaches on its own time.

use std::time::{Duration, Instant};

/// Calls `check` every 20 ms until it returns `Ok`, and returns that.
/// After `timeout` it panics with the last `Err`, which says what was
/// still not as wanted.
pub fn until<T>(timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(why) if Instant::now() >= deadline => panic!("gave up after {timeout:?}: {why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_once_the_check_holds() {
        let mut calls = 0;
        let value = until(Duration::from_secs(5), || {
            calls += 1;
            if calls < 3 {
                Err(format!("call {calls}"))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(value, 3);
    }

    #[test]
    #[should_panic(expected = "still 7")]
    fn panics_with_the_last_reason() {
        until(Duration::from_millis(60), || {
            Err::<(), _>("still 7".to_owned())
        });
    }
}
