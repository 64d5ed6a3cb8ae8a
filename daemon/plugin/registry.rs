//! The plugin registry: bundled plugins (embedded in the binary) overridden by `.rhai` files
//! in the plugin directory, each compiled once at load, with its declared metadata. Owns
//! loading and calling plugin functions; it must not perform requests (that is `host`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{AST, Dynamic, Map};

use super::contract::{self, Message, Outcome, Request, Response};
use super::inbound::{GatewayReply, Inbound, InboundRequest};
use super::sandbox::{Sandbox, ScriptError, has_fn, limits};
use crate::diagnostic::{Diagnostic, SourceFile};
use crate::vocab::{PluginCatalog, PluginInfo};

/// Plugins shipped inside the binary: (name, source).
pub(crate) const BUNDLED: &[(&str, &str)] = &[
    ("console", include_str!("../../plugins/console.rhai")),
    ("smtp", include_str!("../../plugins/smtp.rhai")),
    ("twilio", include_str!("../../plugins/twilio.rhai")),
    ("vonage", include_str!("../../plugins/vonage.rhai")),
    ("webhook", include_str!("../../plugins/webhook.rhai")),
    ("ntfy", include_str!("../../plugins/ntfy.rhai")),
];

/// A plugin problem, located in the plugin's file when possible.
#[derive(Debug, Clone)]
pub struct PluginError {
    pub file: String,
    pub message: String,
    /// Byte span and source for a caret rendering.
    pub location: Option<(usize, Arc<SourceFile>)>,
}

impl PluginError {
    fn at(plugin_source: &Arc<SourceFile>, e: ScriptError) -> Self {
        let location = e.position.map(|(line, col)| {
            let start: usize = plugin_source
                .text
                .split_inclusive('\n')
                .take(line - 1)
                .map(str::len)
                .sum();
            let line_text =
                plugin_source.line_text(line.min(plugin_source.text.lines().count().max(1)));
            let off = line_text
                .char_indices()
                .nth(col - 1)
                .map(|(i, _)| i)
                .unwrap_or(line_text.len());
            (start + off, plugin_source.clone())
        });
        Self {
            file: plugin_source.name.clone(),
            message: e.message,
            location,
        }
    }

    fn plain(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            message: message.into(),
            location: None,
        }
    }

    /// `file:line:column` with the line and a caret, or `file: message`.
    pub fn render(&self) -> String {
        match &self.location {
            Some((offset, src)) => src.render(&Diagnostic::error(
                *offset..*offset + 1,
                format!("plugin: {}", self.message),
            )),
            None => format!("error: plugin {}: {}\n", self.file, self.message),
        }
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some((offset, src)) => {
                let p = src.position(*offset);
                write!(f, "{}:{}:{}: {}", self.file, p.line, p.column, self.message)
            }
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// One compiled plugin.
pub struct Plugin {
    pub name: String,
    pub source: Arc<SourceFile>,
    ast: AST,
    /// The recipient address field it delivers to (`fn address()`).
    pub address: Option<String>,
    /// Default settings (`fn defaults()`), merged under the channel's own.
    pub defaults: Map,
    /// The settings it reads (`fn settings()`), when it declares them.
    pub settings: Option<Vec<String>>,
    has_validate: bool,
    has_on_response: bool,
    has_inbound: bool,
    has_inbound_response: bool,
    has_inbound_warnings: bool,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("file", &self.source.name)
            .finish()
    }
}

impl Plugin {
    fn compile(
        sandbox: &Sandbox,
        name: &str,
        file: String,
        text: String,
    ) -> Result<Self, PluginError> {
        let source = Arc::new(SourceFile::new(file, text));
        let ast = sandbox
            .compile(&source.text)
            .map_err(|e| PluginError::at(&source, e))?;
        if !has_fn(&ast, "send", 2) {
            return Err(PluginError::plain(
                &source.name,
                "a plugin must define `fn send(message, settings)`",
            ));
        }
        let call0 = |f: &str| -> Result<Option<Dynamic>, PluginError> {
            if !has_fn(&ast, f, 0) {
                return Ok(None);
            }
            sandbox
                .call(&ast, f, vec![], limits::CALL_DEADLINE)
                .map(Some)
                .map_err(|e| PluginError::at(&source, e))
        };
        let address = match call0("address")? {
            None => None,
            Some(v) if v.is_unit() => None,
            Some(v) if v.is_string() => Some(v.into_string().unwrap_or_default()),
            Some(v) => {
                return Err(PluginError::plain(
                    &source.name,
                    format!(
                        "`fn address()` must return a string, found {}",
                        v.type_name()
                    ),
                ));
            }
        };
        let defaults = match call0("defaults")? {
            None => Map::new(),
            Some(v) => match v.try_cast::<Map>() {
                Some(m) => m,
                None => {
                    return Err(PluginError::plain(
                        &source.name,
                        "`fn defaults()` must return a map",
                    ));
                }
            },
        };
        let settings = match call0("settings")? {
            None => None,
            Some(v) => {
                let names = v.clone().try_cast::<rhai::Array>().map(|a| {
                    a.into_iter()
                        .map(|n| n.into_string())
                        .collect::<Result<Vec<_>, _>>()
                });
                match (names, v.try_cast::<Map>()) {
                    (Some(Ok(names)), _) => Some(names),
                    (_, Some(m)) => Some(m.keys().map(|k| k.to_string()).collect()),
                    _ => {
                        return Err(PluginError::plain(
                            &source.name,
                            "`fn settings()` must return an array of setting names",
                        ));
                    }
                }
            }
        };
        Ok(Self {
            name: name.to_string(),
            settings,
            has_validate: has_fn(&ast, "validate", 1),
            has_on_response: has_fn(&ast, "on_response", 3),
            has_inbound: has_fn(&ast, "inbound", 2),
            has_inbound_response: has_fn(&ast, "inbound_response", 2),
            has_inbound_warnings: has_fn(&ast, "inbound_warnings", 1),
            source,
            ast,
            address,
            defaults,
        })
    }

    /// The channel's effective settings: the plugin's defaults overlaid with the channel's.
    pub fn effective_settings(&self, channel: &Map) -> Map {
        let mut m = self.defaults.clone();
        for (k, v) in channel {
            m.insert(k.clone(), v.clone());
        }
        m
    }

    /// Runs the optional `fn validate(settings)`: `()`/`true` accept; a string or a thrown
    /// error rejects with that message.
    pub fn validate(&self, sandbox: &Sandbox, settings: &Map) -> Result<(), PluginError> {
        if !self.has_validate {
            return Ok(());
        }
        let v = sandbox
            .call(
                &self.ast,
                "validate",
                vec![settings.clone().into()],
                limits::CALL_DEADLINE,
            )
            .map_err(|e| PluginError::at(&self.source, e))?;
        if v.is_unit() || v.as_bool() == Ok(true) {
            Ok(())
        } else if v.is_string() {
            Err(PluginError::plain(
                &self.source.name,
                v.into_string().unwrap_or_default(),
            ))
        } else {
            Err(PluginError::plain(
                &self.source.name,
                "settings rejected by `validate`",
            ))
        }
    }

    /// Calls `fn send(message, settings)` and reads the request it describes.
    pub fn send(
        &self,
        sandbox: &Sandbox,
        message: &Message,
        settings: &Map,
    ) -> Result<Request, PluginError> {
        let v = sandbox
            .call(
                &self.ast,
                "send",
                vec![message.to_dynamic(), settings.clone().into()],
                limits::CALL_DEADLINE,
            )
            .map_err(|e| PluginError::at(&self.source, e))?;
        contract::request_from_dynamic(v).map_err(|e| {
            PluginError::plain(
                &self.source.name,
                format!("`send` returned a bad request: {e}"),
            )
        })
    }

    /// Whether the plugin classifies responses itself (`fn on_response`).
    pub fn classifies(&self) -> bool {
        self.has_on_response
    }

    /// Classifies an HTTP response with the plugin's `on_response`, or the default rule.
    pub fn classify(
        &self,
        sandbox: &Sandbox,
        response: &Response,
        message: &Message,
        settings: &Map,
    ) -> Result<Outcome, PluginError> {
        if !self.has_on_response {
            return Ok(response.default_outcome());
        }
        let v = sandbox
            .call(
                &self.ast,
                "on_response",
                vec![
                    response.to_dynamic(),
                    message.to_dynamic(),
                    settings.clone().into(),
                ],
                limits::CALL_DEADLINE,
            )
            .map_err(|e| PluginError::at(&self.source, e))?;
        contract::outcome_from_dynamic(v, response)
            .map_err(|e| PluginError::plain(&self.source.name, e.to_string()))
    }
}

/// Replies through the channel's gateway (`fn inbound`, see `plugins/README.md`).
impl Plugin {
    /// Whether the plugin takes replies (`fn inbound(request, settings)`).
    pub fn receives(&self) -> bool {
        self.has_inbound
    }

    /// Calls `fn inbound(request, settings)` with the channel's own `secrets` (name →
    /// value) available to `verify_signature` for the length of the call.
    pub fn inbound(
        &self,
        sandbox: &Sandbox,
        request: &InboundRequest,
        settings: &Map,
        secrets: HashMap<String, String>,
    ) -> Result<Inbound, PluginError> {
        let v = super::inbound::with_secrets(secrets, || {
            sandbox.call(
                &self.ast,
                "inbound",
                vec![request.to_dynamic(), settings.clone().into()],
                limits::CALL_DEADLINE,
            )
        })
        .map_err(|e| PluginError::at(&self.source, e))?;
        super::inbound::inbound_from_dynamic(v)
            .map_err(|e| PluginError::plain(&self.source.name, format!("`inbound` returned {e}")))
    }

    /// What to answer the gateway, with `reply` as a text back to the sender when there is
    /// one: `None` when the plugin has no `fn inbound_response` or returns `()` (then the
    /// host answers an empty 200 and sends any reply through `send`).
    pub fn inbound_response(
        &self,
        sandbox: &Sandbox,
        reply: Option<&str>,
        settings: &Map,
    ) -> Result<Option<GatewayReply>, PluginError> {
        if !self.has_inbound_response {
            return Ok(None);
        }
        let reply = reply
            .map(|r| Dynamic::from(r.to_string()))
            .unwrap_or(Dynamic::UNIT);
        let v = sandbox
            .call(
                &self.ast,
                "inbound_response",
                vec![reply, settings.clone().into()],
                limits::CALL_DEADLINE,
            )
            .map_err(|e| PluginError::at(&self.source, e))?;
        super::inbound::reply_from_dynamic(v).map_err(|e| {
            PluginError::plain(
                &self.source.name,
                format!("`inbound_response` returned {e}"),
            )
        })
    }

    /// The optional `fn inbound_warnings(settings)`: what `check` should say about taking
    /// replies with these settings (unsigned requests, say).
    pub fn inbound_warnings(
        &self,
        sandbox: &Sandbox,
        settings: &Map,
    ) -> Result<Vec<String>, PluginError> {
        if !self.has_inbound_warnings {
            return Ok(Vec::new());
        }
        let v = sandbox
            .call(
                &self.ast,
                "inbound_warnings",
                vec![settings.clone().into()],
                limits::CALL_DEADLINE,
            )
            .map_err(|e| PluginError::at(&self.source, e))?;
        if v.is_unit() {
            return Ok(Vec::new());
        }
        let found = v.type_name();
        v.try_cast::<rhai::Array>()
            .map(|a| a.into_iter().map(|w| w.to_string()).collect())
            .ok_or_else(|| {
                PluginError::plain(
                    &self.source.name,
                    format!("`inbound_warnings` must return an array of strings, found {found}"),
                )
            })
    }
}

/// All plugins available to a plan (cheap to clone: everything in it is shared).
#[derive(Clone)]
pub struct Registry {
    pub sandbox: Arc<Sandbox>,
    plugins: BTreeMap<String, Arc<Plugin>>,
    /// The directory `.rhai` files were read from (it may not exist).
    dir: std::path::PathBuf,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("plugins", &self.plugins.keys())
            .finish()
    }
}

impl Registry {
    /// Compiles the bundled plugins and every `*.rhai` file in `dir` (a missing directory
    /// is fine). A file with the name of a bundled plugin overrides it.
    pub fn load(dir: &Path) -> Result<Self, PluginError> {
        let sandbox = Arc::new(Sandbox::new());
        let mut sources: BTreeMap<String, (String, String)> = BUNDLED
            .iter()
            .map(|(n, s)| {
                (
                    n.to_string(),
                    (format!("<bundled>/{n}.rhai"), s.to_string()),
                )
            })
            .collect();
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut paths: Vec<PathBuf> =
                    entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                paths.sort();
                for path in paths {
                    if path.extension().and_then(|e| e.to_str()) != Some("rhai") {
                        continue;
                    }
                    let Some(stem) = path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .map(str::to_string)
                    else {
                        continue;
                    };
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        PluginError::plain(&path.display().to_string(), format!("can't read: {e}"))
                    })?;
                    sources.insert(stem, (path.display().to_string(), text));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(PluginError::plain(
                    &dir.display().to_string(),
                    format!("can't read plugin directory: {e}"),
                ));
            }
        }
        let mut plugins = BTreeMap::new();
        for (name, (file, text)) in sources {
            let p = Plugin::compile(&sandbox, &name, file, text)?;
            plugins.insert(name, Arc::new(p));
        }
        Ok(Self {
            sandbox,
            plugins,
            dir: dir.to_path_buf(),
        })
    }

    /// A plugin by name (`twilio` or `twilio.rhai`).
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name.strip_suffix(".rhai").unwrap_or(name))
    }
}

impl PluginCatalog for Registry {
    fn lookup(&self, name: &str) -> Option<PluginInfo> {
        self.get(name).map(|p| PluginInfo {
            address: p.address.clone(),
            settings: p.settings.clone(),
        })
    }

    fn names(&self) -> Vec<String> {
        self.plugins.keys().cloned().collect()
    }

    fn searched(&self) -> Option<String> {
        Some(self.dir.display().to_string())
    }
}
