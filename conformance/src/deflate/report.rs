//! Running the deflate cases and reporting them: one line per case, the
//! closing `N passed, M failed` line, a markdown summary.

use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sockeye_proto::Role;

use super::cases::{
    DeflateCase, MAX_CASE_BYTES, MAX_MESSAGES, message_count, negotiations, section_title,
};
use super::run::{DeflateOutcome, run_case};
use super::testee::DeflateTargets;
use crate::report::role_name;

/// One case's result in one role.
#[derive(Debug, Clone)]
pub struct DeflateResult {
    /// The testee's role.
    pub role: Role,
    /// The case id.
    pub id: String,
    /// The case description.
    pub description: String,
    /// What happened.
    pub outcome: DeflateOutcome,
    /// How long it took.
    pub elapsed: Duration,
}

impl DeflateResult {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.outcome.passed()
    }

    /// The section number.
    pub fn section(&self) -> u32 {
        self.id
            .split('.')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// `PASS server 12.1.1 ...` or `FAIL ...: why`.
    pub fn line(&self) -> String {
        let ratio = if self.outcome.echo_bytes > 0 {
            format!(
                ", {}/{} echoes compressed, ratio {:.2}",
                self.outcome.compressed_echoes,
                self.outcome.echoes,
                self.outcome.echo_wire_bytes as f64 / self.outcome.echo_bytes as f64
            )
        } else {
            String::new()
        };
        let head = format!(
            "{} {} {}{ratio} [{:.2} s]",
            role_name(self.role),
            self.id,
            self.description,
            self.elapsed.as_secs_f64()
        );
        if self.passed() {
            format!("PASS {head}")
        } else {
            format!("FAIL {head}: {}", self.outcome.problems.join("; "))
        }
    }
}

/// Runs `cases` in each of `roles` on `workers` threads, calling `each`
/// with every result in case order.
pub fn run_all(
    cases: &[DeflateCase],
    roles: &[Role],
    targets: &(dyn DeflateTargets + Sync),
    workers: usize,
    mut each: impl FnMut(&DeflateResult),
) -> Vec<DeflateResult> {
    let jobs: Vec<(Role, &DeflateCase)> = roles
        .iter()
        .flat_map(|&role| cases.iter().map(move |case| (role, case)))
        .collect();
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel();
    let mut results: Vec<Option<DeflateResult>> = vec![None; jobs.len()];
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, jobs.len().max(1)) {
            let sender = sender.clone();
            let (jobs, next) = (&jobs, &next);
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(role, case)) = jobs.get(index) else {
                        return;
                    };
                    if sender.send((index, run_one(case, role, targets))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        let mut reported = 0;
        for (index, result) in receiver {
            results[index] = Some(result);
            while let Some(Some(result)) = results.get(reported) {
                each(result);
                reported += 1;
            }
        }
    });
    results.into_iter().flatten().collect()
}

fn run_one(case: &DeflateCase, role: Role, targets: &dyn DeflateTargets) -> DeflateResult {
    let started = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| run_case(case, role, targets)))
        .unwrap_or_else(|payload| {
            let why = payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text panic".into());
            DeflateOutcome {
                problems: vec![format!("panicked: {why}")],
                ..DeflateOutcome::default()
            }
        });
    DeflateResult {
        role,
        id: case.id.clone(),
        description: case.description.clone(),
        outcome,
        elapsed: started.elapsed(),
    }
}

/// The closing line: `N passed, M failed`.
pub fn totals(results: &[DeflateResult]) -> String {
    let passed = results.iter().filter(|result| result.passed()).count();
    format!("{passed} passed, {} failed", results.len() - passed)
}

fn cell(results: &[&DeflateResult], role: Role) -> String {
    let matching: Vec<_> = results.iter().filter(|r| r.role == role).collect();
    let passed = matching.iter().filter(|r| r.passed()).count();
    if passed == matching.len() {
        format!("{passed}/{}", matching.len())
    } else {
        format!("**{passed}/{}**", matching.len())
    }
}

/// The markdown summary: counts per section, subsection and role, then
/// every failure.
pub fn markdown(results: &[DeflateResult], target: &str, elapsed: Duration) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "# permessage-deflate conformance: {target}\n");
    let _ = writeln!(
        text,
        "The ground of Autobahn sections 12 and 13 (RFC 7692), each case in both roles; {} \
         in {:.1} s.\n",
        totals(results),
        elapsed.as_secs_f64()
    );
    let counts = [16, 1024, 4096, 8192, 131_072]
        .map(|len| format!("{} x {len} bytes", message_count(len)))
        .join(", ");
    let _ = writeln!(
        text,
        "Each case sends its messages in a row and checks every echo (content, order, RSV1 \
         only on a message's first frame, inflated with the agreed window and context rule), \
         the negotiated parameters (the answer on the wire and the testee engine's \
         `deflate_params()` where visible) and a clean close with 1000. Autobahn sends 1000 \
         messages per case; here a case sends at most {MAX_MESSAGES} messages and at \
         most {} MiB of payload each way: {}.\n",
        MAX_CASE_BYTES >> 20,
        counts,
    );
    let _ = writeln!(text, "| section | | server | client | case time (summed) |");
    let _ = writeln!(text, "|---|---|---|---|---|");
    let mut sections: Vec<u32> = results.iter().map(DeflateResult::section).collect();
    sections.sort_unstable();
    sections.dedup();
    for section in &sections {
        let matching: Vec<&DeflateResult> =
            results.iter().filter(|r| r.section() == *section).collect();
        let time: Duration = matching.iter().map(|r| r.elapsed).sum();
        let _ = writeln!(
            text,
            "| {section} | {} | {} | {} | {:.2} s |",
            section_title(*section),
            cell(&matching, Role::Server),
            cell(&matching, Role::Client),
            time.as_secs_f64()
        );
    }
    let all: Vec<&DeflateResult> = results.iter().collect();
    let _ = writeln!(
        text,
        "| | **total** | {} | {} | {:.2} s |",
        cell(&all, Role::Server),
        cell(&all, Role::Client),
        elapsed.as_secs_f64()
    );
    let _ = writeln!(text, "\n## Subsections\n");
    let _ = writeln!(text, "| subsection | what | server | client |");
    let _ = writeln!(text, "|---|---|---|---|");
    let mut subsections: Vec<String> = results
        .iter()
        .map(|r| {
            r.id.rsplit_once('.')
                .map_or(r.id.clone(), |(s, _)| s.to_string())
        })
        .collect();
    subsections.dedup();
    let negotiations = negotiations();
    for subsection in &subsections {
        let matching: Vec<&DeflateResult> = results
            .iter()
            .filter(|r| r.id.starts_with(&format!("{subsection}.")))
            .collect();
        let what = match subsection.split_once('.') {
            Some(("12", kind)) => kind
                .parse::<usize>()
                .ok()
                .and_then(|k| super::cases::KINDS.get(k - 1))
                .map_or("", |kind| kind.describe())
                .to_string(),
            Some(("13", index)) => negotiations
                .iter()
                .find(|n| index.parse() == Ok(n.subsection))
                .map_or(String::new(), |n| {
                    format!(
                        "{}; as server: offer `{}`, answer `{}`; as client: offer `{}`, answer `{}`",
                        n.description, n.server.offer, n.server.answer, n.client.offer, n.client.answer
                    )
                }),
            _ => String::new(),
        };
        let _ = writeln!(
            text,
            "| {subsection} | {what} | {} | {} |",
            cell(&matching, Role::Server),
            cell(&matching, Role::Client)
        );
    }
    let failures: Vec<&DeflateResult> = results.iter().filter(|r| !r.passed()).collect();
    if !failures.is_empty() {
        let _ = writeln!(text, "\n## Failures\n");
        for result in failures {
            let _ = writeln!(
                text,
                "- `{} {}` {}: {}",
                role_name(result.role),
                result.id,
                result.description,
                result.outcome.problems.join("; ")
            );
        }
    }
    text
}

/// The cases the arguments select: ids or id prefixes (`13.3` runs
/// 13.3.x); none: every case.
pub fn select(filters: &[String]) -> Vec<DeflateCase> {
    super::cases::all()
        .into_iter()
        .filter(|case| {
            filters.is_empty()
                || filters
                    .iter()
                    .any(|filter| case.id == *filter || case.id.starts_with(&format!("{filter}.")))
        })
        .collect()
}
