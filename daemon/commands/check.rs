//! `kithd check PLAN`: parse and validate a plan and its plugins without touching the
//! network. Prints every problem with file:line:column; exit 0 valid, 65 invalid, 66
//! unreadable. Must not send anything or write state.

use std::io::Write;
use std::path::Path;

use crate::exit;
use crate::plugin::Registry;

pub fn run(plan_path: &Path, plugin_dir: &Path, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let registry = match Registry::load(plugin_dir) {
        Ok(r) => r,
        Err(e) => {
            let _ = write!(err, "{}", e.render());
            return exit::DATAERR;
        }
    };
    match super::load_plan(plan_path, &registry) {
        Ok((loaded, source)) => {
            let mut problems = Vec::new();
            for (id, channel) in &loaded.plan.channels {
                if let Err(e) = crate::dispatch::channel::prepare(&registry, channel) {
                    problems.push(format!("error: channel `{id}`: {e}\n"));
                }
            }
            if !loaded.warnings.is_empty() {
                let _ = writeln!(err, "{}", source.render_all(&loaded.warnings));
            }
            if !problems.is_empty() {
                for p in &problems {
                    let _ = write!(err, "{p}");
                }
                return exit::DATAERR;
            }
            let plan = &loaded.plan;
            let _ = writeln!(
                out,
                "{}: ok ({} item{}, {} contact{}, {} channel{}, {} warning{})",
                source.name,
                plan.items.len(),
                plural(plan.items.len()),
                plan.contacts.len(),
                plural(plan.contacts.len()),
                plan.channels.len(),
                plural(plan.channels.len()),
                loaded.warnings.len(),
                plural(loaded.warnings.len()),
            );
            exit::OK
        }
        Err(f) => {
            let _ = write!(err, "{}", f.report());
            f.exit_code()
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
