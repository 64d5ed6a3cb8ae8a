//! A directory of plans, one person each, through the real binary: `check DIR` checks
//! every plan on its own (an id each, unique; each plan's own secrets first) and lists every
//! plan with problems; `preview DIR` previews the valid ones, JSON lines naming their plan.

use crate::builder::Project;

fn plan(id: Option<&str>, hook: &str) -> String {
    format!(
        "[person]\n{}name = \"P\"\ntimezone = \"UTC\"\nreach = [\"hook\"]\n\n\
         [channels.hook]\nplugin = \"webhook\"\nurl = \"https://hooks.example.org/{hook}\"\nsigning_secret = {{ secret = \"hook_key\" }}\n\n\
         [[checkin]]\nid = \"morning\"\nat = \"09:00\"\nmessage = \"Morning\"\n",
        id.map(|i| format!("id = \"{i}\"\n")).unwrap_or_default()
    )
}

#[test]
fn a_directory_of_plans_is_checked_plan_by_plan() {
    let p = Project::empty();
    p.file("plans/robin.toml", &plan(Some("robin"), "robin"));
    p.file("plans/lee.toml", &plan(Some("lee"), "lee"));
    p.file("plans/noid.toml", &plan(None, "x"));
    p.file("plans/twin.toml", &plan(Some("robin"), "twin"));
    p.file("plans/broken.toml", "[person\nname = ");
    p.file("plans/notes.txt", "not a plan");
    // robin has its own signing key; lee has none and there is no shared one.
    p.file(
        "creds/robin/hook_key",
        "robin-signing-key-robin-signing-key",
    );
    let creds = p.path().join("creds");
    let out = p
        .kithd(&["check", "plans", "--plugins", "plugins"])
        .env("CREDENTIALS_DIRECTORY", &creds)
        .status(65)
        .stdout_has("plans/robin.toml: ok (1 item")
        .stderr_has("secret `hook_key` for `signing_secret` of channel `hook` is not available")
        .stderr_has("a plan in a directory of plans needs an id")
        .stderr_has("plan id `robin` is taken by")
        .stderr_has("4 of 5 plans have problems")
        .run();
    let stderr = crate::support::text(&out.stderr);
    assert!(
        stderr.contains("plans/lee.toml") && stderr.contains("plans/broken.toml"),
        "{stderr}"
    );
    assert!(!stderr.contains("notes.txt"), "{stderr}");
    // A shared key makes lee's plan valid too; robin still uses its own.
    p.file("creds/hook_key", "shared-signing-key-shared-signing-key");
    p.kithd(&["check", "plans", "--plugins", "plugins"])
        .env("CREDENTIALS_DIRECTORY", &creds)
        .status(65)
        .stdout_has("plans/lee.toml: ok")
        .stderr_has("3 of 5 plans have problems")
        .run();
    // The same person's number in two plans: an SMS reply couldn't tell which it answers.
    // (A contact's number may appear in many plans.)
    let q = Project::empty();
    let with_phone = |id: &str, phone: &str| {
        plan(Some(id), id).replace(
            "name = \"P\"\n",
            &format!("name = \"P\"\nphone = \"{phone}\"\n"),
        )
    };
    q.file("plans/a.toml", &with_phone("a", "+49 151 0000001"));
    q.file("plans/b.toml", &with_phone("b", "+491510000001"));
    q.file("plans/c.toml", &with_phone("c", "+491510000009"));
    q.kithd(&["check", "plans", "--plugins", "plugins", "--offline"])
        .status(65)
        .stdout_has("plans/a.toml: ok")
        .stdout_has("plans/c.toml: ok")
        .stderr_has("the person's `phone` is also the person's in `plans/a.toml`")
        .stderr_has("1 of 3 plans have problems")
        .run();
    // Previews: every valid plan, each line naming its plan; the others reported.
    let out = p
        .kithd(&[
            "preview",
            "plans",
            "--plugins",
            "plugins",
            "--from",
            "2026-12-01",
            "--days",
            "1",
            "--format",
            "json",
        ])
        .status(65)
        .run();
    let plans: Vec<String> = crate::support::text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["plan"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(plans, ["lee", "robin"], "one firing each, in file order");
    p.kithd(&[
        "preview",
        "plans",
        "--plugins",
        "plugins",
        "--from",
        "2026-12-01",
        "--days",
        "1",
    ])
    .stdout_has("# robin (plans/robin.toml)")
    .run();
}
