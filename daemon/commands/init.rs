//! `kithd init [PLAN]`: writes a commented starting plan, from flags or by asking on a
//! terminal, that passes `check --offline` (and `check` once the secrets it names exist),
//! then says how to add each secret, what the next day looks like and how to start the
//! service. Never overwrites a plan without `--force`; the plan is written 0600. Must not
//! start anything itself.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::exit;

/// What the plan will say: from flags, completed by questions on a terminal.
#[derive(Debug, Default, Clone)]
pub(crate) struct Answers {
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub ntfy_topic: Option<String>,
    pub webhook: Option<String>,
    /// Daily check-in times, `HH:MM`.
    pub checkins: Vec<String>,
    /// `NAME DOSE @ HH:MM` (the dose may be several words or none).
    pub medications: Vec<String>,
    /// `ID NAME ADDRESS` (the name may be several words; the address is an email, a phone
    /// number or an ntfy topic).
    pub contacts: Vec<String>,
}

/// How the person is reached; decides the channel.
enum Reach {
    Email(String),
    Phone(String),
    Ntfy(String),
    Webhook(String),
}

pub(crate) fn run(
    plan: &Path,
    mut a: Answers,
    force: bool,
    now: DateTime<Utc>,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> exit::Outcome {
    if plan.exists() && !force {
        return Err(exit::Error::PlanExists(plan.to_path_buf()));
    }
    let interactive = std::io::stdin().is_terminal() && a.name.is_none();
    if interactive {
        ask(&mut a, input, out)?;
    }
    let text = render(&a)?;
    // Valid before it is written: the same load step `check --offline` runs.
    let source = crate::diagnostic::SourceFile::new(plan.display().to_string(), &text);
    let registry = crate::plugin::Registry::load(Path::new("/nonexistent-kithd-init-plugins"))
        .map_err(|e| exit::Error::Init(e.render()))?;
    if let Err(f) = crate::load::load_source(source, registry, crate::load::Secrets::Offline, now) {
        return Err(exit::Error::Init(format!(
            "the plan these answers make is not valid:\n{}",
            f.render().trim_end()
        )));
    }
    write_private(plan, &text).map_err(|source| exit::Error::CantWrite {
        path: plan.to_path_buf(),
        source,
    })?;
    let plan = std::path::absolute(plan).unwrap_or_else(|_| plan.to_path_buf());
    closing_words(&plan, &a, now, out);
    Ok(exit::OK)
}

/// Questions on a terminal.
struct Prompt<'a> {
    input: &'a mut dyn BufRead,
    out: &'a mut dyn Write,
}

impl Prompt<'_> {
    fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    /// Asks `question`; an empty answer is `default`.
    fn ask(&mut self, question: &str, default: &str) -> Result<String, exit::Error> {
        let _ = if default.is_empty() {
            write!(self.out, "{question} ")
        } else {
            write!(self.out, "{question} [{default}] ")
        };
        let _ = self.out.flush();
        let mut line = String::new();
        let n = self
            .input
            .read_line(&mut line)
            .map_err(|e| exit::Error::Init(format!("can't read the answer: {e}")))?;
        if n == 0 {
            return Err(exit::Error::Init("no answer (end of input)".into()));
        }
        let line = line.trim();
        Ok(if line.is_empty() { default } else { line }.to_string())
    }
}

/// Asks for whatever the flags left out.
fn ask(a: &mut Answers, input: &mut dyn BufRead, out: &mut dyn Write) -> Result<(), exit::Error> {
    let mut p = Prompt { input, out };
    p.say("Let's write a support plan. Press Enter to take the [default].");
    if a.name.is_none() {
        a.name = Some(p.ask("Whose plan is it (their first name)?", "")?);
    }
    if a.timezone.is_none() {
        a.timezone = Some(p.ask("Time zone?", &system_zone())?);
    }
    if reach_of(a).is_none() {
        match p
            .ask(
                "How should kithd reach them: email, sms, ntfy or webhook?",
                "email",
            )?
            .as_str()
        {
            "sms" => {
                a.phone = Some(p.ask("Phone number (international, e.g. +4915112345678)?", "")?)
            }
            "ntfy" => a.ntfy_topic = Some(p.ask("ntfy topic (something nobody can guess)?", "")?),
            "webhook" => a.webhook = Some(p.ask("Webhook URL (https://...)?", "")?),
            _ => a.email = Some(p.ask("Email address?", "")?),
        }
    }
    if a.checkins.is_empty() {
        let t = p.ask("A daily check-in at (HH:MM, or `none`)?", "09:00")?;
        if t != "none" {
            a.checkins.push(t);
        }
    }
    if a.medications.is_empty() {
        loop {
            let m = p.ask("A medication as `NAME DOSE @ HH:MM` (Enter when done)?", "")?;
            if m.is_empty() {
                break;
            }
            a.medications.push(m);
        }
    }
    if a.contacts.is_empty() {
        p.say("One trusted person can be told when a check-in goes unanswered. They must agree first: kithd messages nobody without a consent date in the plan.");
        let c = p.ask("A trusted person as `ID NAME ADDRESS` (Enter to skip)?", "")?;
        if !c.is_empty() {
            a.contacts.push(c);
        }
    }
    Ok(())
}

/// The zone the system is set to, for the default answer.
fn system_zone() -> String {
    if let Ok(tz) = std::env::var("TZ")
        && tz.parse::<Tz>().is_ok()
    {
        return tz;
    }
    std::fs::read_link("/etc/localtime")
        .ok()
        .and_then(|p| {
            let s = p.to_string_lossy().into_owned();
            s.split("zoneinfo/").nth(1).map(str::to_string)
        })
        .filter(|z| z.parse::<Tz>().is_ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/timezone")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|z| z.parse::<Tz>().is_ok())
        })
        .unwrap_or_else(|| "UTC".into())
}

fn reach_of(a: &Answers) -> Option<Reach> {
    (a.email.clone().map(Reach::Email))
        .or_else(|| a.phone.clone().map(Reach::Phone))
        .or_else(|| a.ntfy_topic.clone().map(Reach::Ntfy))
        .or_else(|| a.webhook.clone().map(Reach::Webhook))
}

fn bad(what: &str) -> exit::Error {
    exit::Error::Init(what.to_string())
}

/// A TOML string literal.
fn s(v: &str) -> String {
    toml::Value::String(v.to_string()).to_string()
}

/// The channel table for a way of reaching someone, and its id.
fn channel(reach: &Reach) -> (&'static str, String) {
    match reach {
        Reach::Email(_) => (
            "mail",
            "[channels.mail]\nplugin = \"smtp\"\nhost = \"smtp.example.org\"        # ← your provider's SMTP server\nport = 587\nsecurity = \"starttls\"\nusername = \"you@example.org\"        # ← your login there\npassword = { secret = \"smtp_password\" }\nfrom = \"kithd <you@example.org>\"     # ← the sender address\n".into(),
        ),
        Reach::Phone(_) => (
            "sms",
            "[channels.sms]\nplugin = \"twilio\"\naccount_sid = \"AC00000000000000000000000000000000\"   # ← your Twilio account SID\nauth_token = { secret = \"twilio_token\" }\nfrom = \"+15005550006\"                 # ← your Twilio number\n".into(),
        ),
        Reach::Ntfy(_) => (
            "push",
            "[channels.push]\nplugin = \"ntfy\"\nserver = \"https://ntfy.sh\"          # or your own ntfy server\n".into(),
        ),
        Reach::Webhook(url) => (
            "hook",
            format!("[channels.hook]\nplugin = \"webhook\"\nurl = {}\n", s(url)),
        ),
    }
}

fn address_line(reach: &Reach) -> String {
    match reach {
        Reach::Email(e) => format!("email = {}\n", s(e)),
        Reach::Phone(p) => format!("phone = {}\n", s(p)),
        Reach::Ntfy(t) => format!("ntfy_topic = {}\n", s(t)),
        Reach::Webhook(_) => String::new(),
    }
}

/// What an address looks like it is.
fn reach_for_address(address: &str) -> Reach {
    if address.contains('@') {
        Reach::Email(address.into())
    } else if address.starts_with('+') {
        Reach::Phone(address.into())
    } else if address.starts_with("https://") || address.starts_with("http://") {
        Reach::Webhook(address.into())
    } else {
        Reach::Ntfy(address.into())
    }
}

/// The plan's text.
pub(crate) fn render(a: &Answers) -> Result<String, exit::Error> {
    let name = a.name.as_deref().filter(|n| !n.is_empty()).ok_or_else(|| {
        bad("give the person's name (--name), or run `kithd init` on a terminal to be asked")
    })?;
    let zone = a.timezone.clone().unwrap_or_else(system_zone);
    zone.parse::<Tz>()
        .map_err(|_| bad(&format!("`{zone}` is not a time zone (e.g. Europe/Berlin)")))?;
    let reach = reach_of(a)
        .ok_or_else(|| bad("say how to reach them: --email, --phone, --ntfy-topic or --webhook"))?;
    let (channel_id, channel_table) = channel(&reach);
    let mut channels = vec![(channel_id, channel_table)];
    let mut out = format!(
        "# {name}'s support plan, written by `kithd init`. Every key is described in\n# kithd-plan(5); check it with `kithd check` and look ahead with `kithd preview`.\n\n[person]\nname = {}\ntimezone = {}                # every time below is read in this zone\nquiet_hours = \"22:00-07:30\"        # follow-ups wait until the morning\n{}reach = [{}]\n",
        s(name),
        s(&zone),
        address_line(&reach),
        s(channel_id)
    );
    for c in &a.contacts {
        let words: Vec<&str> = c.split_whitespace().collect();
        let [id, names @ .., address] = words.as_slice() else {
            return Err(bad(&format!(
                "`--contact {c}`: give `ID NAME ADDRESS` (e.g. `sam Sam sam@example.org`)"
            )));
        };
        if names.is_empty() {
            return Err(bad(&format!("`--contact {c}`: give `ID NAME ADDRESS`")));
        }
        let contact_reach = reach_for_address(address);
        let (cid, table) = channel(&contact_reach);
        if !channels.iter().any(|(id, _)| *id == cid) {
            channels.push((cid, table));
        }
        out.push_str(&format!(
            "\n# {} is not told anything until they have agreed. When they have, write the\n# date below (consent = 2026-12-01) and add \"{id}\" to `escalate` in the check-in.\n[contacts.{id}]\nname = {}\nrelation = \"friend\"                  # family | friend | peer | professional | community\n{}reach = [{}]\n# consent = YYYY-MM-DD\n",
            names.join(" "),
            s(&names.join(" ")),
            address_line(&contact_reach),
            s(cid)
        ));
    }
    for (_, table) in &channels {
        out.push('\n');
        out.push_str(table);
    }
    for (i, t) in a.checkins.iter().enumerate() {
        let id = if i == 0 {
            "checkin".to_string()
        } else {
            format!("checkin-{}", i + 1)
        };
        out.push_str(&format!(
            "\n# Answer with `kithd ack {id}` (or `--value 1` to `5`). Without an answer in 3 hours\n# kithd nudges once; add `escalate = [\"ID\"]` to tell a contact who agreed.\n[[checkin]]\nid = {}\nat = {}\nmessage = \"Hi {{person}}, how are you today, 1 to 5?\"\nexpect_reply_within = \"3h\"\nnag = \"1h x1\"\n",
            s(&id),
            s(t)
        ));
    }
    for (i, m) in a.medications.iter().enumerate() {
        let (what, at) = m.split_once('@').ok_or_else(|| {
            bad(&format!(
                "`--medication {m}`: give `NAME DOSE @ HH:MM` (e.g. `sertraline 50 mg @ 20:00`)"
            ))
        })?;
        let mut words = what.split_whitespace();
        let med = words
            .next()
            .ok_or_else(|| bad(&format!("`--medication {m}`: the name is missing")))?;
        let dose: Vec<&str> = words.collect();
        let base = med.to_lowercase();
        let earlier = a.medications[..i]
            .iter()
            .filter(|o| o.split_whitespace().next().map(str::to_lowercase) == Some(base.clone()))
            .count();
        let id = if earlier == 0 {
            base
        } else {
            format!("{base}-{}", earlier + 1)
        }
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>();
        let dose_line = if dose.is_empty() {
            String::new()
        } else {
            format!("dose = {}\n", s(&dose.join(" ")))
        };
        out.push_str(&format!(
            "\n# Answer `taken` or `skipped` (`kithd ack {id} --value skipped`); the report shows adherence.\n[[medication]]\nid = {}\nname = {}\n{dose_line}at = {}\nmessage = \"Time for your {}{{name}}, {{person}}.\"\nconfirm_within = \"2h\"\n",
            s(&id),
            s(med),
            s(at.trim()),
            if dose.is_empty() { "" } else { "{dose} of " }
        ));
    }
    Ok(out)
}

/// Writes the plan readable by its owner only, creating its directory.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file (with --force) keeps its mode unless made private here.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(text.as_bytes())
}

fn closing_words(plan: &Path, a: &Answers, now: DateTime<Utc>, out: &mut dyn Write) {
    let p = plan.display();
    let _ = writeln!(out, "\nWrote {p} (readable by you only).");
    let secrets: Vec<&str> = match reach_of(a) {
        Some(Reach::Email(_)) => vec!["smtp_password"],
        Some(Reach::Phone(_)) => vec!["twilio_token"],
        _ => vec![],
    };
    let contact_secrets = a.contacts.iter().filter_map(|c| {
        match reach_for_address(c.split_whitespace().last().unwrap_or("")) {
            Reach::Email(_) => Some("smtp_password"),
            Reach::Phone(_) => Some("twilio_token"),
            _ => None,
        }
    });
    let mut secrets: Vec<&str> = secrets.into_iter().chain(contact_secrets).collect();
    secrets.sort();
    secrets.dedup();
    let system = plan.starts_with("/etc/kithd");
    if !secrets.is_empty() {
        let _ = writeln!(
            out,
            "\nFirst edit the lines marked ← in the plan, then add the secrets it names:"
        );
        for name in &secrets {
            let _ = if system {
                writeln!(
                    out,
                    "  sudo sh -c 'umask 077; cat > /etc/kithd/credentials/{name}'   # paste it, then Ctrl-D"
                )
            } else {
                writeln!(
                    out,
                    "  mkdir -p ~/.config/kithd/credentials && (umask 077; cat > ~/.config/kithd/credentials/{name})   # paste it, then Ctrl-D"
                )
            };
        }
    }
    let _ = writeln!(
        out,
        "\nThe next day, as `kithd preview {p} --days 1` shows it:"
    );
    let preview = super::preview::Args {
        plan,
        plugin_dir: Path::new("/nonexistent-kithd-init-plugins"),
        from: None,
        horizon: super::preview::Horizon::Days(1),
        format: super::preview::Format::Text,
        now,
    };
    let mut lines = Vec::new();
    let _ = super::preview::run(preview, &mut lines, &mut std::io::sink());
    for line in String::from_utf8_lossy(&lines).lines() {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(
        out,
        "\nCheck it (with its secrets) once they are in place:\n  kithd check {p}"
    );
    let _ = if system {
        writeln!(
            out,
            "\nStart the service:\n  sudo chown root:kithd {p} && sudo chmod 0640 {p}\n  sudo systemctl enable --now kithd\n  sudo kithd status"
        )
    } else {
        writeln!(
            out,
            "\nStart the service (as yourself):\n  systemctl --user enable --now kithd\n  kithd status"
        )
    };
    let _ = writeln!(
        out,
        "\nMore examples for real lives: /usr/share/doc/kithd/examples/ (or config/examples/ in the source)."
    );
}
