//! What the plan validator needs to know about plugins, as a trait, so that `plan` never
//! depends on `plugin`. Owns nothing else.

/// Facts about one plugin that validation uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The recipient address field this plugin delivers to (`email`, `phone`, `ntfy_topic`),
    /// or `None` when it needs no address (console, webhook).
    pub address: Option<String>,
    /// The channel settings the plugin reads (`fn settings()`), or `None` when it does
    /// not say (then unknown keys are only warned about).
    pub settings: Option<Vec<String>>,
}

/// A lookup of plugin names (bundled names or `.rhai` files in the plugin directory).
pub trait PluginCatalog {
    fn lookup(&self, name: &str) -> Option<PluginInfo>;
    /// All known names, for "did you mean" hints.
    fn names(&self) -> Vec<String>;
    /// The plugin directory that was searched, for the hint when a name is unknown.
    fn searched(&self) -> Option<String> {
        None
    }
}
