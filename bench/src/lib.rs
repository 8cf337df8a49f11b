//! sockeye's benchmark harness (issue 7).
//!
//! The binary `sockeye-bench` runs every scenario against every server:
//! sockeye (`sockeye serve`), echo servers built on other WebSocket
//! implementations (`sockeye-bench-peer`: tokio-tungstenite,
//! fastwebsockets, yawc; Node's `ws` when installed) and raw TCP echo
//! servers, the floors (a tokio task per connection, and a mio event
//! loop). The load generator is `sockeye bench`. Each server
//! runs alone on core 0, the generator on core 1; CPU time and run-queue
//! waits come from `/proc`. It writes `bench/results/DATE.md` and a chart
//! beside it. `bench/run` builds everything and runs it; `bench/run
//! --smoke` is the few-second check CI runs.
//!
//! Modules: [`peers`] (the echo servers), [`raw_mio`] (the raw TCP echo
//! on a mio event loop: the floor for an event-loop server),
//! [`raw_readiness`] (a prototype of that loop on tokio's readiness API),
//! [`raw_broadcast`] (the raw TCP fan-out floor), [`plan`] (servers and
//! scenarios), [`runner`] (processes and measurements), [`procfs`]
//! (reading `/proc`), [`results`] (medians, ratios, markdown) and
//! [`chart`] (SVG).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod chart;
pub mod peers;
pub mod plan;
pub mod procfs;
pub mod raw_broadcast;
pub mod raw_mio;
pub mod raw_readiness;
pub mod results;
pub mod runner;

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    civil_date(seconds / 86_400)
}

/// The date `days` days after 1970-01-01 (proleptic Gregorian).
pub fn civil_date(days: u64) -> String {
    // Shift the epoch to 0000-03-01, so leap days end each 4-year cycle.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(59), "1970-03-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(20_780), "2026-11-23");
        assert_eq!(today().len(), 10);
    }
}
