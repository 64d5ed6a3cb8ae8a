//! Test helpers for plans: a catalog where every plugin exists, and a loader for plans that
//! must be valid. Test builds only.

use crate::vocab::{PluginCatalog, PluginInfo};

/// For tests: a catalog where every plugin exists and needs no address.
#[cfg(test)]
pub(crate) struct AnyPlugin;

#[cfg(test)]
impl PluginCatalog for AnyPlugin {
    fn lookup(&self, _: &str) -> Option<PluginInfo> {
        Some(PluginInfo {
            address: None,
            settings: None,
        })
    }

    fn names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// For tests: loads a plan that must be valid.
#[cfg(test)]
pub(crate) fn test_plan(text: &str) -> super::Plan {
    let source = crate::diagnostic::SourceFile::new("test.toml", text);
    match super::load(&source, &AnyPlugin) {
        Ok(l) => l.plan,
        Err(d) => panic!("invalid test plan:\n{}", source.render_all(&d)),
    }
}
