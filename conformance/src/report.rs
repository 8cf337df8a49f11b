//! Running the whole suite and reporting it: one line per case, the
//! closing `N passed, M failed` line, and a markdown summary.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, mpsc};
use std::time::{Duration, Instant};

use sockeye_proto::Role;

use crate::case::Case;
use crate::run::run_case;
use crate::target::TargetFactory;

/// The result of one case in one role.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The testee's role.
    pub role: Role,
    /// The case id.
    pub id: String,
    /// The case description.
    pub description: String,
    /// The section number.
    pub section: u32,
    /// What went wrong; empty if it passed.
    pub problems: Vec<String>,
    /// How long it took.
    pub elapsed: Duration,
}

impl CaseResult {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// `server 6.4.1`.
    pub fn name(&self) -> String {
        format!("{} {}", role_name(self.role), self.id)
    }

    /// `PASS server 1.1.1 text 0 bytes`, or `FAIL ...: what went wrong`.
    /// Cases slower than 100 ms show their time.
    pub fn line(&self) -> String {
        let time = if self.elapsed >= Duration::from_millis(100) {
            format!(" [{:.2} s]", self.elapsed.as_secs_f64())
        } else {
            String::new()
        };
        if self.passed() {
            format!("PASS {} {}{time}", self.name(), self.description)
        } else {
            format!(
                "FAIL {} {}{time}: {}",
                self.name(),
                self.description,
                self.problems.join("; ")
            )
        }
    }
}

/// `server` or `client`.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Server => "server",
        Role::Client => "client",
    }
}

/// The title of an Autobahn-style section.
pub fn section_title(section: u32) -> &'static str {
    match section {
        1 => "Framing",
        2 => "Pings and Pongs",
        3 => "Reserved bits",
        4 => "Opcodes",
        5 => "Fragmentation",
        6 => "UTF-8 handling",
        7 => "Close handling",
        9 => "Limits and performance",
        10 => "Auto-fragmentation",
        _ => "Other",
    }
}

thread_local! {
    /// Set while this thread runs cases: its panics are recorded, not printed.
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs, once, a panic hook that records panics of threads running
/// cases and hands every other panic to the hook that was there before.
fn capture_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                LAST_PANIC.with(|last| *last.borrow_mut() = Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `cases` in each of `roles`, calling `each` with every result as it
/// comes. A panic in the testee fails its case and the run goes on.
pub fn run_all(
    cases: &[Case],
    roles: &[Role],
    factory: &dyn TargetFactory,
    mut each: impl FnMut(&CaseResult),
) -> Vec<CaseResult> {
    capture_panics();
    let mut results = Vec::with_capacity(cases.len() * roles.len());
    for &role in roles {
        for case in cases {
            let result = run_one(case, role, factory);
            each(&result);
            results.push(result);
        }
    }
    results
}

/// [`run_all`] with `workers` cases at a time, each on a thread of its
/// own (for a target whose testee runs on its own and mostly waits, such
/// as HTTP/2 streams sharing connections); `each` still sees the results
/// in order.
pub fn run_all_parallel(
    cases: &[Case],
    roles: &[Role],
    factory: &(dyn TargetFactory + Sync),
    workers: usize,
    mut each: impl FnMut(&CaseResult),
) -> Vec<CaseResult> {
    capture_panics();
    let jobs: Vec<(Role, &Case)> = roles
        .iter()
        .flat_map(|&role| cases.iter().map(move |case| (role, case)))
        .collect();
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel();
    let mut results: Vec<Option<CaseResult>> = vec![None; jobs.len()];
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
                    if sender.send((index, run_one(case, role, factory))).is_err() {
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

/// Runs one case in one role, a panic recorded as its failure.
fn run_one(case: &Case, role: Role, factory: &dyn TargetFactory) -> CaseResult {
    let started = Instant::now();
    CAPTURING.with(|capturing| capturing.set(true));
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| run_case(case, role, factory)));
    CAPTURING.with(|capturing| capturing.set(false));
    let problems = match outcome {
        Ok(outcome) => outcome.problems,
        Err(_) => {
            let message = LAST_PANIC
                .with(|last| last.borrow_mut().take())
                .unwrap_or_else(|| "unknown panic".into());
            vec![format!(
                "the testee panicked: {}",
                message.replace('\n', " ")
            )]
        }
    };
    CaseResult {
        role,
        id: case.id.clone(),
        description: case.description.clone(),
        section: case.section(),
        problems,
        elapsed: started.elapsed(),
    }
}

/// The closing line: `N passed, M failed`.
pub fn totals(results: &[CaseResult]) -> String {
    let passed = results.iter().filter(|result| result.passed()).count();
    format!("{passed} passed, {} failed", results.len() - passed)
}

/// A markdown summary: cases per section and role, then every failure.
pub fn markdown(results: &[CaseResult], target: &str, elapsed: Duration) -> String {
    let mut sections: Vec<u32> = results.iter().map(|result| result.section).collect();
    sections.sort_unstable();
    sections.dedup();
    let count = |section: Option<u32>, role: Role| {
        let matching = results
            .iter()
            .filter(|r| r.role == role && section.is_none_or(|s| r.section == s));
        let (mut passed, mut total) = (0, 0);
        for result in matching {
            total += 1;
            passed += usize::from(result.passed());
        }
        (passed, total)
    };
    let cell = |(passed, total): (usize, usize)| {
        if passed == total {
            format!("{passed}/{total}")
        } else {
            format!("**{passed}/{total}**")
        }
    };
    let mut text = String::new();
    let _ = writeln!(text, "# Conformance: {target}\n");
    let _ = writeln!(
        text,
        "Autobahn-style cases, each in both roles; {} in {:.1} s.\n",
        totals(results),
        elapsed.as_secs_f64()
    );
    let _ = writeln!(text, "| section | | server | client | time |");
    let _ = writeln!(text, "|---|---|---|---|---|");
    for section in &sections {
        let time: Duration = results
            .iter()
            .filter(|result| result.section == *section)
            .map(|result| result.elapsed)
            .sum();
        let _ = writeln!(
            text,
            "| {section} | {} | {} | {} | {:.2} s |",
            section_title(*section),
            cell(count(Some(*section), Role::Server)),
            cell(count(Some(*section), Role::Client)),
            time.as_secs_f64()
        );
    }
    let _ = writeln!(
        text,
        "| | **total** | {} | {} | {:.2} s |",
        cell(count(None, Role::Server)),
        cell(count(None, Role::Client)),
        elapsed.as_secs_f64()
    );
    let failures: Vec<&CaseResult> = results.iter().filter(|r| !r.passed()).collect();
    if !failures.is_empty() {
        let _ = writeln!(text, "\n## Failures\n");
        for result in failures {
            let _ = writeln!(
                text,
                "- `{}` {}: {}",
                result.name(),
                result.description,
                result.problems.join("; ")
            );
        }
    }
    text
}
