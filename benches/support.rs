//! What the benches share: Telegram's limits lifted, and peak memory.

use std::time::Duration;

use icp_sms_doctor::telegram::Options;
use icp_sms_doctor::telegram::intake::FloodLimits;
use icp_sms_doctor::telegram::pacer::Limits;

/// Telegram's own pacing (1 message a second per chat) would measure the
/// clock, not the bot: the limits are lifted for the measurement.
pub fn unlimited() -> Options {
    Options {
        limits: Limits {
            per_second: 100_000,
            private_burst: 100_000,
            group_per_second: 100_000,
            group_per_minute: 1_000_000,
            second: Duration::from_secs(1),
        },
        polling_timeout: Duration::from_secs(5),
        grace: Duration::from_secs(5),
        flood: FloodLimits {
            burst: 1_000_000,
            per_minute: 1_000_000,
        },
        busy_wait: Duration::from_secs(3600),
        ..Options::default()
    }
}

/// The peak resident set size of this process (bot, fake API and all).
pub fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_else(|| "unknown (no /proc/self/status)".to_string())
}
