//! `check` is the truth: every case the issue lists, through the real binary. What `check`
//! refuses, `run` refuses with the same problem; what it accepts, `run` and `preview` take.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::builder::Cmd;
use crate::daemon::{Daemon, cron_in, plan, project, receiver, wait_for, webhook};
use crate::support::text;

const KEY: &str = "0123456789abcdef0123456789abcdef-answer-key";

/// `kithd ARGS` in `dir` with only these secrets in the environment.
fn kithd(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Cmd::new(dir, args).envs(env).output()
}

fn check(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut args = vec!["check", "plan.toml", "--plugins", "plugins"];
    args.extend_from_slice(extra);
    let out = kithd(dir, &args, env);
    (
        out.status.code(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

const SERVER: &str = "[server]\npublic_url = \"https://kithd.example.org\"\n";
const CONSOLE: &str = "[channels.console]\nplugin = \"console\"\n";

#[test]
fn a_server_without_its_key_fails_check_as_it_fails_run() {
    let dir = project(&plan(&["console"], &format!("{SERVER}{CONSOLE}"), ""));
    let (code, out) = check(dir.path(), &[], &[]);
    assert_eq!(code, Some(65), "{out}");
    assert!(
        out.contains("error: secret `answer_key` is not available")
            && out.contains("plan.toml:6:1")
            && out.contains("KITHD_SECRET_ANSWER_KEY"),
        "{out}"
    );
    let (code, out) = check(dir.path(), &["--offline"], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("secrets not checked"), "{out}");
    let (code, out) = check(dir.path(), &[], &[("KITHD_SECRET_ANSWER_KEY", "short")]);
    assert_eq!(code, Some(65), "{out}");
    assert!(
        out.contains("is 5 bytes long; it must be at least 32"),
        "{out}"
    );
    let (code, out) = check(dir.path(), &[], &[("KITHD_SECRET_ANSWER_KEY", KEY)]);
    assert_eq!(code, Some(0), "{out}");
    // An inbound token file holding only a newline would have turned authentication off:
    // it is refused at load, like any key shorter than 32 bytes.
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("answer_key"), KEY).unwrap();
    std::fs::write(creds.join("inbound_token"), "\n").unwrap();
    let creds_env = [("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())];
    let (code, out) = check(dir.path(), &[], &creds_env);
    assert_eq!(code, Some(65), "{out}");
    assert!(
        out.contains("secret `inbound_token` is 0 bytes long"),
        "{out}"
    );
    let out = kithd(
        dir.path(),
        &[
            "run",
            "plan.toml",
            "--plugins",
            "plugins",
            "--state-dir",
            "state",
        ],
        &creds_env,
    );
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    std::fs::remove_file(creds.join("inbound_token")).unwrap();
    // `run` refuses the same plan for the same reason, before touching the ledger.
    let out = kithd(
        dir.path(),
        &[
            "run",
            "plan.toml",
            "--plugins",
            "plugins",
            "--state-dir",
            "state",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("secret `answer_key` is not available"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("state").exists());
}

#[test]
fn host_channel_keys_are_typed_and_unknown_keys_are_named() {
    let channels = "[channels.hook]\nplugin = \"webhook\"\nurl = \"https://hooks.example.org/k\"\ntimeout = \"5 seconds\"\nmax_attempt = 3\nconcurrency = 0\ngive_up_after = 7\n";
    let dir = project(&plan(&["hook"], channels, ""));
    let (code, out) = check(dir.path(), &[], &[]);
    assert_eq!(code, Some(65), "{out}");
    for expected in [
        "bad duration in `timeout`",
        "plan.toml:10:",
        "unknown setting `max_attempt` for plugin `webhook`",
        "did you mean `max_attempts`?",
        "`concurrency` must be between 1 and 256",
        "`give_up_after` must be a duration such as \"30s\"",
    ] {
        assert!(out.contains(expected), "{expected}\n{out}");
    }
    // A custom plugin that doesn't declare its settings: a warning, not an error.
    let dir = project(&plan(
        &["mine"],
        "[channels.mine]\nplugin = \"mine\"\ncolour = \"blue\"\n",
        "",
    ));
    std::fs::write(
        dir.path().join("plugins/mine.rhai"),
        "fn send(m, s) { #{ type: \"stdout\", text: m.text } }\n",
    )
    .unwrap();
    let (code, out) = check(dir.path(), &[], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "warning: plugin `mine` does not declare its settings, so `colour` can't be checked"
        ),
        "{out}"
    );
}

#[test]
fn secrets_are_checked_at_load() {
    let channels = "[channels.hook]\nplugin = \"webhook\"\nurl = \"https://hooks.example.org/k\"\nsigning_secret = { secret = \"hook_key\" }\n[channels.spare]\nplugin = \"webhook\"\nurl = \"https://spare.example.org/k\"\nsigning_secret = { secret = \"spare_key\" }\n";
    let dir = project(&plan(&["hook"], channels, ""));
    let (code, out) = check(dir.path(), &[], &[]);
    assert_eq!(code, Some(65), "{out}");
    assert!(
        out.contains(
            "error: secret `hook_key` for `signing_secret` of channel `hook` is not available"
        ) && out.contains("plan.toml:9:18")
            && out.contains("`KITHD_SECRET_HOOK_KEY`"),
        "{out}"
    );
    assert!(
        out.contains("warning: secret `spare_key` for `signing_secret` of channel `spare` is not available (no one's `reach` uses the channel)"),
        "{out}"
    );
    let (code, out) = check(dir.path(), &[], &[("KITHD_SECRET_HOOK_KEY", "")]);
    assert_eq!(code, Some(65));
    assert!(out.contains("of channel `hook` is empty"), "{out}");
    // From a credentials directory, as systemd passes them.
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("hook_key"), "s3cret-signing-key\n").unwrap();
    let (code, out) = check(
        dir.path(),
        &[],
        &[("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        !out.contains("s3cret"),
        "a secret value in the output: {out}"
    );
}

#[test]
fn plugins_are_dry_run_at_check() {
    let cases = [
        (
            "jsno",
            "fn send(m, s) { #{ type: \"http\", method: \"POST\", url: s.url, jsno: #{ text: m.text } } }",
            "jsno",
        ),
        (
            "htp",
            "fn send(m, s) { #{ type: \"htp\", method: \"POST\", url: s.url } }",
            "unknown request type",
        ),
        ("string", "fn send(m, s) { \"hello\" }", "must return a map"),
        (
            "spin",
            "fn send(m, s) { let n = 0; loop { n += 1; } }",
            "terminated",
        ),
        (
            "elsewhere",
            "fn send(m, s) { #{ type: \"http\", method: \"POST\", url: \"https://evil.example.net/x\", json: #{} } }",
            "may only reach https://hooks.example.org:443",
        ),
    ];
    for (name, src, expect) in cases {
        let dir = project(&plan(
            &["mine"],
            &format!(
                "[channels.mine]\nplugin = \"{name}\"\nurl = \"https://hooks.example.org/k\"\n"
            ),
            "",
        ));
        std::fs::write(
            dir.path().join(format!("plugins/{name}.rhai")),
            format!("// {name}\n{src}\n"),
        )
        .unwrap();
        let (code, out) = check(dir.path(), &[], &[]);
        assert_eq!(code, Some(65), "{name}: {out}");
        assert!(
            out.contains("channel `mine`: the plugin's dry run failed")
                && out.contains(expect)
                && out.contains("plan.toml:7:10")
                && out.contains("nothing was sent"),
            "{name}: {out}"
        );
        assert!(!out.contains("panicked"), "{out}");
    }
}

#[test]
fn suspicious_but_legal_plans_get_warnings() {
    let text = "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [\"console\"]\n\n[contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nconsent = 2999-01-01\nquiet_hours = \"22:00-07:00\"\nreach = [\"console\"]\n\n[channels.console]\nplugin = \"console\"\n\n[[appointment]]\nid = \"old\"\nwhen = \"2020-01-01T10:00\"\nmessage = \"{title}\"\ntitle = \"Dentist\"\n\n[[followup]]\nid = \"late\"\nwith = \"sam\"\nto = [\"sam\"]\nat = \"03:00\"\nrespect_quiet_hours = false\nmessage = \"Hi\"\n";
    let dir = project(text);
    let (code, out) = check(dir.path(), &[], &[]);
    assert_eq!(code, Some(0), "{out}");
    for expected in [
        "warning: appointment `old` was at 2020-01-01 10:00, in the past",
        "warning: `sam` gave consent on 2999-01-01, which is in the future",
        "warning: `late` would message `sam` at 03:00 their time, inside their quiet hours",
        "4 warnings",
    ] {
        assert!(out.contains(expected), "{expected}\n{out}");
    }
    // A plan every local user can read gets a warning: it holds health data.
    let plan = dir.path().join("plan.toml");
    std::fs::set_permissions(&plan, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (code, out) = check(dir.path(), &[], &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("warning: every user on this machine can read the plan (mode 644)")
            && out.contains("5 warnings"),
        "{out}"
    );
}

#[test]
fn preview_bounds_are_usage_errors() {
    let dir = project(&plan(
        &["console"],
        CONSOLE,
        "[[checkin]]\nid = \"c\"\nat = \"09:00\"\nmessage = \"Hi\"\n",
    ));
    for args in [
        ["preview", "plan.toml", "--days", "4294967295"],
        ["preview", "plan.toml", "--days", "3661"],
        ["preview", "plan.toml", "--count", "100001"],
    ] {
        let out = kithd(dir.path(), &args, &[]);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(!text(&out.stderr).contains("panicked"));
    }
    let out = kithd(dir.path(), &["preview", "plan.toml", "--days", "3660"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout).lines().count(), 3660);
    let out = kithd(
        dir.path(),
        &[
            "preview",
            "plan.toml",
            "--count",
            "100000",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout).lines().count(),
        3660,
        "bounded by ten years"
    );
}

#[test]
fn whatever_check_accepts_run_and_preview_take() {
    // Every valid plan in the repository: check, preview a year, and run until ready.
    let root = crate::support::root();
    let mut plans: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("tests/fixtures"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path().join("plan.toml")))
        .filter(|p| p.exists())
        .collect();
    plans.push(root.join("config/example.toml"));
    assert!(plans.len() >= 5);
    let env = [("KITHD_SECRET_ANSWER_KEY", KEY)];
    for p in plans {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        std::fs::copy(&p, dir.path().join("plan.toml")).unwrap();
        let (code, out) = check(dir.path(), &[], &env);
        assert_eq!(code, Some(0), "{}: {out}", p.display());
        let preview = kithd(
            dir.path(),
            &[
                "preview",
                "plan.toml",
                "--plugins",
                "plugins",
                "--days",
                "366",
            ],
            &env,
        );
        assert_eq!(preview.status.code(), Some(0), "{}", p.display());
        let d = Daemon::start(dir.path(), &env);
        d.wait_log("Ready.", Duration::from_secs(10));
        let (code, _, logs) = d.stop();
        assert_eq!(code, Some(0), "{}: {logs}", p.display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_retry_after_fails_over_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/busy"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "10000000000000"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/spare"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (_, cron) = cron_in(2);
    let channels = format!(
        "{}{}",
        webhook("busy", &format!("{}/busy", server.uri()), ""),
        webhook("spare", &format!("{}/spare", server.uri()), "")
    );
    let dir = project(&plan(
        &["busy", "spare"],
        &channels,
        &format!(
            "[[medication]]\nid = \"dose\"\nname = \"lithium\"\ncron = \"{cron}\"\nmessage = \"Dose\"\n"
        ),
    ));
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("Ready.", Duration::from_secs(10));
    let got = wait_for(&server, "/spare", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{}", d.logs());
    d.wait_log(
        "longer than this channel's give_up_after",
        Duration::from_secs(5),
    );
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_missing_a_secret_keeps_the_old_plan_and_says_so() {
    let server = receiver().await;
    let hook = webhook("hook", &format!("{}/h", server.uri()), "");
    let dir = project(&plan(&["hook"], &hook, ""));
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let d = Daemon::start(
        dir.path(),
        &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())],
    );
    let mut buf = [0u8; 4096];
    let mut recv_until = |needle: &str| -> String {
        loop {
            let n = sock.recv(&mut buf).expect("a notify datagram");
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            if m.contains(needle) {
                return m;
            }
        }
    };
    recv_until("READY=1");
    // The new plan signs its webhook with a secret this daemon doesn't have.
    let signed = webhook(
        "hook",
        &format!("{}/h", server.uri()),
        "signing_secret = { secret = \"hook_key\" }",
    );
    std::fs::write(dir.path().join("plan.toml"), plan(&["hook"], &signed, "")).unwrap();
    // The unit's ExecReload check (offline) passes it...
    let (code, out) = check(dir.path(), &["--offline"], &[]);
    assert_eq!(code, Some(0), "{out}");
    d.hup();
    d.wait_log("the previous plan keeps running", Duration::from_secs(5));
    assert!(
        d.logs()
            .contains("secret `hook_key` for `signing_secret` of channel `hook` is not available"),
        "{}",
        d.logs()
    );
    // ...and the daemon says in STATUS= that it kept the old plan.
    let status = recv_until("previous plan keeps running");
    assert!(status.contains("READY=1"), "{status}");
    assert!(
        status.contains("STATUS=degraded: the reloaded plan has 1 problem"),
        "{status}"
    );
    let (code, _, _) = d.stop();
    assert_eq!(code, Some(0));
}
