//! What the suite's test binaries share: their arguments, the case
//! selection and the summary file.

use std::path::PathBuf;
use std::time::Duration;

use sockeye_proto::Role;

use crate::case::Case;
use crate::cases;

/// The arguments of a suite run:
/// `[FILTER...] [--role server|client] [--quiet-ms N] [--patience-ms N]
/// [--workers N]`.
#[derive(Debug, Clone)]
pub struct Args {
    /// Case ids or id prefixes (`6.4` runs 6.4.x); empty: every case.
    pub filters: Vec<String>,
    /// The roles to run the testee in.
    pub roles: Vec<Role>,
    /// `--quiet-ms`, if given (TCP pacing).
    pub quiet: Option<Duration>,
    /// `--patience-ms`, if given (TCP pacing).
    pub patience: Option<Duration>,
    /// `--workers N`: cases run at a time, if given (where the target
    /// supports it).
    pub workers: Option<usize>,
}

impl Args {
    /// Parses the process's arguments; flags cargo passes to a libtest
    /// harness are ignored.
    pub fn from_env() -> Result<Args, String> {
        Args::parse(std::env::args().skip(1))
    }

    /// Parses `args`.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            filters: Vec::new(),
            roles: vec![Role::Server, Role::Client],
            quiet: None,
            patience: None,
            workers: None,
        };
        let mut args = args.into_iter();
        let millis = |value: Option<String>, flag: &str| {
            value
                .as_deref()
                .and_then(|text| text.parse().ok())
                .map(Duration::from_millis)
                .ok_or_else(|| format!("{flag} takes a number of milliseconds, not {value:?}"))
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--role" => match args.next().as_deref() {
                    Some("server") => parsed.roles = vec![Role::Server],
                    Some("client") => parsed.roles = vec![Role::Client],
                    other => return Err(format!("--role takes server or client, not {other:?}")),
                },
                "--quiet-ms" => parsed.quiet = Some(millis(args.next(), "--quiet-ms")?),
                "--patience-ms" => parsed.patience = Some(millis(args.next(), "--patience-ms")?),
                "--workers" => {
                    let value = args.next();
                    match value.as_deref().and_then(|text| text.parse().ok()) {
                        Some(count) if count > 0 => parsed.workers = Some(count),
                        _ => {
                            return Err(format!(
                                "--workers takes a positive number, not {value:?}"
                            ));
                        }
                    }
                }
                // Flags cargo or a user may pass to a libtest harness.
                flag if flag.starts_with('-') => {}
                filter => parsed.filters.push(filter.to_string()),
            }
        }
        Ok(parsed)
    }

    /// The cases the filters select, in order.
    pub fn cases(&self) -> Vec<Case> {
        cases::all()
            .into_iter()
            .filter(|case| {
                self.filters.is_empty()
                    || self.filters.iter().any(|filter| {
                        case.id == *filter || case.id.starts_with(&format!("{filter}."))
                    })
            })
            .collect()
    }
}

/// Writes `summary` to `target/NAME` (or `$CARGO_TARGET_DIR/NAME`) and
/// says where on stderr.
pub fn write_summary(name: &str, summary: &str) {
    let path = target_dir().join(name);
    match std::fs::write(&path, summary) {
        Ok(()) => eprintln!("summary written to {}", path.display()),
        Err(error) => eprintln!("could not write {}: {error}", path.display()),
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|arg| (*arg).to_string()))
    }

    #[test]
    fn filters_roles_and_pacing() {
        let args = parse(&["6.4", "--role", "client", "--quiet-ms", "40", "--nocapture"]).unwrap();
        assert_eq!(args.filters, ["6.4"]);
        assert_eq!(args.roles, [Role::Client]);
        assert_eq!(args.quiet, Some(Duration::from_millis(40)));
        assert!(args.cases().iter().all(|case| case.id.starts_with("6.4.")));
        assert!(parse(&["--role", "both"]).is_err());
        assert!(parse(&["--patience-ms", "soon"]).is_err());
    }
}
