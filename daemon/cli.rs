//! Command-line interface: argument definitions and the one place that maps a command's
//! result to an exit code. Must not contain command logic.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::clock::{Clock, SystemClock};
use crate::commands::{self, preview};
use crate::exit;

#[derive(Debug, Parser)]
#[command(
    name = "kithd",
    version,
    about = "Keeps a person in recovery close to their support network: check-ins, medication reminders, follow-ups and appointment reminders from a TOML support plan.",
    after_help = "The plan format is described in kithd-plan(5). Start with `kithd init`, check with `kithd check`, look ahead with `kithd preview`, then run it as a service (see the README)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The delivery ledger: `sqlite:DIR` (the default is `kithd.db` in the state directory)
    /// or `postgresql://USER@HOST/DB?sslmode=verify-full` for several instances sharing one
    /// (see the README's "Several instances"). Used by run, status, history, ack, snooze,
    /// pause, resume and report.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "KITHD_LEDGER",
        hide_env_values = true
    )]
    ledger: Option<String>,
    /// The plan (its `[person] id`) of a daemon that runs a directory of plans: status,
    /// history, ack, snooze, pause, resume and report read and answer that plan's ledger.
    #[arg(long = "plan", global = true, value_name = "ID", value_parser = plan_id)]
    plan_id: Option<String>,
}

fn plan_id(s: &str) -> Result<String, String> {
    match crate::vocab::is_plan_id(s) {
        true => Ok(s.to_string()),
        false => Err("a plan id is letters, digits, `-` and `_` (its `[person] id`)".into()),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReportFormat {
    Text,
    Csv,
    Json,
    Html,
}

#[derive(Debug, Subcommand)]
enum LedgerAction {
    /// Copy a one-machine SQLite ledger into an empty shared PostgreSQL database (all or nothing; stop the daemon first).
    Copy {
        /// The ledger to copy: `sqlite:DIR` (the state directory) or `sqlite:DIR/kithd.db`.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The shared ledger: `postgresql://USER@HOST/DATABASE?sslmode=…`, an empty database.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a plan exactly as `run` loads it: plugins, a dry run of each used channel and its secrets (no network); exit 0 valid, 65 invalid, 66 unreadable.
    Check {
        /// The support plan (TOML), e.g. /etc/kithd/plan.toml, or a directory of plans (each with `[person] id`), each checked on its own.
        plan: PathBuf,
        /// Directory of `.rhai` plugins; a file there overrides the bundled plugin of the same name (default: /etc/kithd/plugins as root, else ~/.config/kithd/plugins).
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
        /// Don't check that the plan's secrets are available (checking a plan on another machine).
        #[arg(long)]
        offline: bool,
    },
    /// List upcoming firings in time order, in local time.
    Preview {
        /// The support plan (TOML), or a directory of plans (each previewed in turn; JSON lines carry `plan`).
        plan: PathBuf,
        /// Start: RFC 3339, or a local date-time in the person's zone (default: now).
        #[arg(long, value_name = "DATETIME")]
        from: Option<String>,
        /// How many days to show (default 7, at most 3660).
        #[arg(long, conflicts_with = "count", value_parser = clap::value_parser!(u32).range(1..=3660))]
        days: Option<u32>,
        /// How many firings to show (at most 100000).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        count: Option<u64>,
        /// Output: one line per firing, or one JSON object per line.
        #[arg(long, value_enum, default_value = "text")]
        format: FormatArg,
        /// Directory of `.rhai` plugins (see `kithd check --help`).
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
    },
    /// Run the daemon: fire the plan's items on time and deliver them (SIGHUP reloads).
    Run {
        /// The support plan (TOML).
        plan: PathBuf,
        /// Directory of `.rhai` plugins (see `kithd check --help`).
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
        /// Where the ledger is (default: $KITHD_STATE_DIR, $STATE_DIRECTORY, /var/lib/kithd as root when it exists, else $XDG_STATE_HOME/kithd or ~/.local/state/kithd; the same for every command).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Seconds in-flight deliveries may take to finish at shutdown.
        #[arg(long, value_name = "SECS", default_value_t = 10)]
        shutdown_grace: u64,
    },
    /// Show next firings, pending and retrying deliveries, dead letters and channel errors.
    Status {
        /// Where the ledger is (default: $KITHD_STATE_DIR, $STATE_DIRECTORY, /var/lib/kithd as root when it exists, else $XDG_STATE_HOME/kithd or ~/.local/state/kithd; the same for every command).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// One line for monitoring: exit 0 healthy, 1 degraded, 2 no running daemon or an unreadable ledger.
        #[arg(long)]
        check: bool,
    },
    /// Show what was sent, when, to whom and through which channel, and what was missed.
    History {
        /// Where the ledger is (default: $KITHD_STATE_DIR, $STATE_DIRECTORY, /var/lib/kithd as root when it exists, else $XDG_STATE_HOME/kithd or ~/.local/state/kithd; the same for every command).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Only firings scheduled at or after this (RFC 3339, or YYYY-MM-DD[THH:MM] in UTC).
        #[arg(long, value_name = "DATETIME")]
        since: Option<String>,
        /// Only this item.
        #[arg(long, value_name = "ID")]
        item: Option<String>,
        /// Output: one line per delivery, or one JSON object per line.
        #[arg(long, value_enum, default_value = "text")]
        format: FormatArg,
    },
    /// Answer the latest open check-in or dose of ITEM (works while the daemon runs).
    Ack {
        /// The item's id in the plan (`id = "..."`).
        item: String,
        /// `ok` or a mood 1-5 for a check-in; `taken` or `skipped` for a dose (default: `ok` for a check-in, `taken` for a dose).
        #[arg(long)]
        value: Option<String>,
        /// A note to keep with the answer.
        #[arg(long)]
        note: Option<String>,
        /// Where the ledger is (default: $KITHD_STATE_DIR, $STATE_DIRECTORY, /var/lib/kithd as root when it exists, else $XDG_STATE_HOME/kithd or ~/.local/state/kithd; the same for every command).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Put off the latest open check-in or dose of ITEM: sent again after DURATION (default 30m), its answer deadline and any alert moved with it, up to the item's max_snooze in all.
    Snooze {
        /// The item's id in the plan.
        item: String,
        /// How long, from 1m to 1d (default 30m).
        duration: Option<String>,
        /// Where the ledger is (see `kithd status --help`).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Pause reminders (all, or some items or kinds) until a time: nothing of them is sent and no one is alerted; history says paused, not missed.
    Pause {
        /// Until when: a duration (3d, 12h) or a local date (the whole day) or date-time in the person's zone.
        #[arg(long, value_name = "WHEN")]
        until: String,
        /// Only these items (comma-separated ids).
        #[arg(long, value_delimiter = ',', value_name = "IDS")]
        items: Vec<String>,
        /// Only these kinds (comma-separated: checkin, medication, followup, appointment); e.g. keep medication running with --kinds checkin,followup.
        #[arg(long, value_delimiter = ',', value_name = "KINDS")]
        kinds: Vec<String>,
        /// Why (shown by `status`).
        #[arg(long)]
        reason: Option<String>,
        /// Where the ledger is (see `kithd status --help`).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Work on the delivery ledger itself.
    Ledger {
        #[command(subcommand)]
        action: LedgerAction,
    },
    /// Set the passphrase that opens your own pages (/me: today, the week ahead, how it has gone), read from standard input; only its Argon2id hash is kept, in the ledger.
    Passphrase {
        /// Remove it instead: /me is closed.
        #[arg(long)]
        remove: bool,
        /// Where the ledger is (see `kithd status --help`).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// End every pause made with `kithd pause`.
    Resume {
        /// Where the ledger is (see `kithd status --help`).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Adherence per medication, check-in answers and mood, escalations and all-clears.
    Report {
        /// How many days back (at most 36600).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=36_600))]
        days: u32,
        /// Output: text, CSV (one row per item), JSON, or HTML (one self-contained page with the charts of your /me/report page, to share by your choice).
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        /// Write it to FILE (created with mode 0600) instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Where the ledger is (default: $KITHD_STATE_DIR, $STATE_DIRECTORY, /var/lib/kithd as root when it exists, else $XDG_STATE_HOME/kithd or ~/.local/state/kithd; the same for every command).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Ask a contact (with `invite = true`) whether they agree to be told when the person doesn't answer in time; alerts go to them once they reply YES.
    Invite {
        /// The support plan (TOML).
        plan: PathBuf,
        /// The contact's id (`[contacts.ID]`).
        contact: String,
        /// Plugin directory.
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
        /// Where the ledger is (see `kithd status --help`).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Write everything kithd holds about the person as one JSON document: deliveries, answers and notes, missed firings, pauses, deletions, and (given the plan) its items and contacts with the consent each relied on.
    Export {
        /// The support plan, for a summary of its items and contacts (optional).
        plan: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: ExportFormat,
        /// Plugin directory (with PLAN).
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
        /// Where the ledger is (see `kithd status --help`).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Erase the person's history (all, or before a date) so that the bytes are gone from the ledger; only that a deletion happened is kept. Stop the daemon first (SQLite).
    Forget {
        /// Erase everything before this (RFC 3339, or `YYYY-MM-DD[THH:MM]` in the person's zone).
        #[arg(
            long,
            value_name = "WHEN",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        before: Option<String>,
        /// Erase everything.
        #[arg(long)]
        all: bool,
        /// Where the ledger is (see `kithd status --help`).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Send one test notification now through a channel; exit 0 only when it was accepted.
    SendTest {
        /// The support plan (TOML).
        plan: PathBuf,
        /// The channel id to send through.
        #[arg(long)]
        channel: String,
        /// The recipient: `self` or a contact id.
        #[arg(long, required_unless_present = "inbound")]
        to: Option<String>,
        /// The text (default: a short test sentence).
        #[arg(long)]
        message: Option<String>,
        /// Instead of sending, replay a captured gateway request (raw HTTP: request line,
        /// headers, a blank line, the body) against the channel's `inbound()`, offline, and
        /// print what it read and what the gateway would be answered.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["to", "message"])]
        inbound: Option<PathBuf>,
        /// Directory of `.rhai` plugins (see `kithd check --help`).
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
    },
    /// Write a commented starting plan (asking on a terminal, or from the flags), then say how to add its secrets and start the service.
    Init {
        /// Where to write it (default: /etc/kithd/plan.toml as root, else ~/.config/kithd/plan.toml).
        plan: Option<PathBuf>,
        /// The person's first name.
        #[arg(long)]
        name: Option<String>,
        /// Their time zone, e.g. Europe/Berlin (default: the system's).
        #[arg(long, value_name = "ZONE")]
        timezone: Option<String>,
        /// Reach them by email at this address.
        #[arg(long, value_name = "ADDRESS", group = "reach")]
        email: Option<String>,
        /// Reach them by SMS at this number (international form, +…).
        #[arg(long, value_name = "NUMBER", group = "reach")]
        phone: Option<String>,
        /// Reach them by ntfy push on this topic.
        #[arg(long, value_name = "TOPIC", group = "reach")]
        ntfy_topic: Option<String>,
        /// Reach them through this webhook URL.
        #[arg(long, value_name = "URL", group = "reach")]
        webhook: Option<String>,
        /// A daily check-in at HH:MM (repeatable).
        #[arg(long, value_name = "HH:MM")]
        checkin: Vec<String>,
        /// A medication as 'NAME DOSE @ HH:MM' (repeatable).
        #[arg(long, value_name = "'NAME DOSE @ HH:MM'")]
        medication: Vec<String>,
        /// A trusted person as 'ID NAME ADDRESS' (repeatable); they are told nothing until you add the date they agreed.
        #[arg(long, value_name = "'ID NAME ADDRESS'")]
        contact: Vec<String>,
        /// Replace an existing plan.
        #[arg(long)]
        force: bool,
    },
    /// Write the plan as iCalendar (RFC 5545) to standard output: what kithd will do, for the person's calendar.
    Calendar {
        /// The support plan (TOML).
        plan: PathBuf,
        /// Start: RFC 3339, or a local date-time in the person's zone (default: now).
        #[arg(long, value_name = "DATETIME")]
        from: Option<String>,
        /// How many days ahead (default 30, at most 366).
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
        /// Name items (medication names, titles) and include their messages; without it, titles are generic ("Medication") so a shared calendar leaks nothing.
        #[arg(long)]
        details: bool,
        /// Directory of `.rhai` plugins (see `kithd check --help`).
        #[arg(long, value_name = "DIR")]
        plugins: Option<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh or fish) to standard output.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (kithd(1), one per subcommand, kithd-plan(5)) into DIR/man1 and DIR/man5 (for packaging).
    #[command(hide = true)]
    Manpages {
        /// Where to write them.
        dir: PathBuf,
    },
}

/// Runs the CLI and returns the process exit code.
pub fn run(args: impl IntoIterator<Item = OsString>) -> u8 {
    run_with_clock(args, Arc::new(SystemClock))
}

/// Runs a command reading the time from `clock`: the one place the process's clock is
/// chosen (the system clock for the binary; tests may give another).
pub fn run_with_clock(args: impl IntoIterator<Item = OsString>, clock: Arc<dyn Clock>) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let ledger = cli.ledger;
    let plan_id = cli.plan_id;
    let place = |given: Option<PathBuf>| {
        commands::state_dir(given)
            .with_ledger(ledger.clone())
            .with_plan(plan_id.clone())
    };
    let outcome = match cli.command {
        Command::Check {
            plan,
            plugins,
            offline,
        } => {
            let dir = plugins.unwrap_or_else(commands::default_plugin_dir);
            commands::check::run(&plan, &dir, offline, clock.now(), &mut out, &mut err)
        }
        Command::Preview {
            plan,
            from,
            days,
            count,
            format,
            plugins,
        } => {
            let dir = plugins.unwrap_or_else(commands::default_plugin_dir);
            let horizon = match (days, count) {
                (_, Some(n)) => preview::Horizon::Count(n as usize),
                (Some(d), None) => preview::Horizon::Days(d),
                (None, None) => preview::Horizon::Days(7),
            };
            preview::run(
                preview::Args {
                    plan: &plan,
                    plugin_dir: &dir,
                    from: from.as_deref(),
                    horizon,
                    format: match format {
                        FormatArg::Text => preview::Format::Text,
                        FormatArg::Json => preview::Format::Json,
                    },
                    now: clock.now(),
                },
                &mut out,
                &mut err,
            )
        }
        Command::Run {
            plan,
            plugins,
            state_dir,
            shutdown_grace,
        } => {
            drop(out);
            drop(err);
            return crate::runtime::run(crate::runtime::Options {
                plan,
                plugin_dir: plugins.unwrap_or_else(commands::default_plugin_dir),
                state_dir: place(state_dir).path,
                ledger: ledger.clone(),
                shutdown_grace: std::time::Duration::from_secs(shutdown_grace),
                clock,
            });
        }
        Command::Ack {
            item,
            value,
            note,
            state_dir,
        } => commands::ack::run(
            &place(state_dir),
            &item,
            value.as_deref(),
            note.as_deref(),
            clock.now(),
            &mut out,
        ),
        Command::Snooze {
            item,
            duration,
            state_dir,
        } => commands::snooze::run(
            &place(state_dir),
            &item,
            duration.as_deref(),
            clock.now(),
            &mut out,
        ),
        Command::Pause {
            until,
            items,
            kinds,
            reason,
            state_dir,
        } => commands::pause::pause(
            &place(state_dir),
            commands::pause::Args {
                until: &until,
                items,
                kinds,
                reason,
            },
            clock.now(),
            &mut out,
        ),
        Command::Ledger {
            action: LedgerAction::Copy { from, to },
        } => commands::ledger::copy(&from, &to, &mut out),
        Command::Passphrase { remove, state_dir } => {
            commands::passphrase::run(&place(state_dir), remove, clock.now(), &mut out)
        }
        Command::Resume { state_dir } => {
            commands::pause::resume(&place(state_dir), clock.now(), &mut out)
        }
        Command::Invite {
            plan,
            contact,
            plugins,
            state_dir,
        } => commands::invite::run(
            &plan,
            &plugins.unwrap_or_else(commands::default_plugin_dir),
            &contact,
            &place(state_dir),
            clock.now(),
            &mut out,
            &mut err,
        ),
        Command::Export {
            plan,
            format: ExportFormat::Json,
            plugins,
            state_dir,
        } => commands::keeping::export(
            &place(state_dir),
            plan.as_deref(),
            &plugins.unwrap_or_else(commands::default_plugin_dir),
            clock.now(),
            &mut out,
        ),
        Command::Forget {
            before,
            all: _,
            state_dir,
        } => commands::keeping::forget(&place(state_dir), before.as_deref(), clock.now(), &mut out),
        Command::Report {
            days,
            format,
            output,
            state_dir,
        } => {
            let format = match format {
                ReportFormat::Text => commands::report::Format::Text,
                ReportFormat::Csv => commands::report::Format::Csv,
                ReportFormat::Json => commands::report::Format::Json,
                ReportFormat::Html => commands::report::Format::Html,
            };
            let dir = place(state_dir);
            match output {
                None => commands::report::run(&dir, days, format, clock.now(), &mut out),
                Some(file) => commands::report::to_file(&dir, days, format, clock.now(), &file),
            }
        }
        Command::Status { state_dir, check } => {
            let dir = place(state_dir);
            if check {
                commands::status::check(&dir, clock.now(), &mut out)
            } else {
                commands::status::run(&dir, clock.now(), &mut out)
            }
        }
        Command::History {
            state_dir,
            since,
            item,
            format,
        } => commands::history::run(
            &place(state_dir),
            since.as_deref(),
            item.as_deref(),
            match format {
                FormatArg::Text => commands::history::Format::Text,
                FormatArg::Json => commands::history::Format::Json,
            },
            &mut out,
        ),
        Command::SendTest {
            plan,
            channel,
            to,
            message,
            inbound,
            plugins,
        } => {
            let dir = plugins.unwrap_or_else(commands::default_plugin_dir);
            let args = commands::send_test::Args {
                plan: &plan,
                plugin_dir: &dir,
                channel: &channel,
                to: to.as_deref().unwrap_or(crate::vocab::SELF_ID),
                message: message.as_deref(),
                now: clock.now(),
            };
            match inbound {
                Some(capture) => commands::replay::run(args, &capture, &mut out, &mut err),
                None => commands::send_test::run(args, &mut out, &mut err),
            }
        }
        Command::Init {
            plan,
            name,
            timezone,
            email,
            phone,
            ntfy_topic,
            webhook,
            checkin,
            medication,
            contact,
            force,
        } => commands::init::run(
            &plan.unwrap_or_else(commands::default_plan),
            commands::init::Answers {
                name,
                timezone,
                email,
                phone,
                ntfy_topic,
                webhook,
                checkins: checkin,
                medications: medication,
                contacts: contact,
            },
            force,
            clock.now(),
            &mut std::io::stdin().lock(),
            &mut out,
        ),
        Command::Calendar {
            plan,
            from,
            days,
            details,
            plugins,
        } => {
            let dir = plugins.unwrap_or_else(commands::default_plugin_dir);
            commands::calendar::run(
                commands::calendar::Args {
                    plan: &plan,
                    plugin_dir: &dir,
                    from: from.as_deref(),
                    days,
                    details,
                    now: clock.now(),
                },
                &mut out,
                &mut err,
            )
        }
        Command::Completions { shell } => {
            // Into memory first: a closed pipe (`| head`) is not worth a panic.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "kithd", &mut script);
            let _ = std::io::Write::write_all(&mut out, &script);
            Ok(exit::OK)
        }
        Command::Manpages { dir } => commands::manpages::run(Cli::command(), &dir),
    };
    exit::finish(outcome, &mut err)
}
