//! Prepared channels: a plan channel bound to its compiled plugin, with its effective
//! settings as a rhai map (secrets as opaque handles) and its validated allowed host.
//! Must not perform requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use rhai::{Array, Dynamic, Map};

use crate::plan::{Channel, ChannelLimits, Plan, Setting};
use crate::plugin::{Grant, Plugin, PluginError, Registry, SecretText};

/// A channel ready to send.
#[derive(Debug, Clone)]
pub struct PreparedChannel {
    pub id: String,
    pub plugin: Arc<Plugin>,
    pub settings: Map,
    pub address: Option<String>,
    /// The secrets it may use, how long a request may take and where it may go.
    pub grant: Grant,
    /// The host's own settings (`max_attempts`, `concurrency`, …), typed at load.
    pub limits: ChannelLimits,
}

/// All channels of a plan, prepared.
#[derive(Debug, Clone, Default)]
pub struct ChannelSet {
    pub channels: BTreeMap<String, PreparedChannel>,
}

/// Converts a plan setting to a script value; secrets become opaque handles.
pub fn setting_to_dynamic(s: &Setting) -> Dynamic {
    match s {
        Setting::String(v) => v.clone().into(),
        Setting::Integer(i) => (*i).into(),
        Setting::Float(f) => (*f).into(),
        Setting::Bool(b) => (*b).into(),
        Setting::Secret(name) => Dynamic::from(SecretText::named(name)),
        Setting::List(l) => l.iter().map(setting_to_dynamic).collect::<Array>().into(),
        Setting::Table(t) => {
            let mut m = Map::new();
            for (k, v) in t {
                m.insert(k.as_str().into(), setting_to_dynamic(v));
            }
            m.into()
        }
    }
}

/// Binds one channel to its plugin and runs the plugin's `validate`.
pub fn prepare(registry: &Registry, channel: &Channel) -> Result<PreparedChannel, PluginError> {
    let plugin = registry
        .get(&channel.plugin)
        .cloned()
        .ok_or_else(|| PluginError {
            file: channel.plugin.clone(),
            message: "unknown plugin".into(),
            location: None,
        })?;
    let mut own = Map::new();
    for (k, v) in &channel.settings {
        own.insert(k.as_str().into(), setting_to_dynamic(v));
    }
    let settings = plugin.effective_settings(&own);
    let secrets = channel
        .secrets()
        .into_iter()
        .map(|(_, name)| name.to_string())
        .collect();
    let mut grant =
        Grant::for_channel(&own, &plugin.defaults, secrets).map_err(|message| PluginError {
            file: channel.plugin.clone(),
            message,
            location: None,
        })?;
    grant.timeout = channel.limits.timeout.map(|d| d.to_std());
    plugin.validate(&registry.sandbox, &settings)?;
    Ok(PreparedChannel {
        id: channel.id.clone(),
        address: channel.address.clone(),
        plugin,
        settings,
        grant,
        limits: channel.limits,
    })
}

impl ChannelSet {
    /// Prepares every channel of a plan; returns every failure, named by channel id.
    pub fn prepare(registry: &Registry, plan: &Plan) -> Result<Self, Vec<(String, PluginError)>> {
        let mut channels = BTreeMap::new();
        let mut errors = Vec::new();
        for (id, c) in &plan.channels {
            match prepare(registry, c) {
                Ok(p) => {
                    channels.insert(id.clone(), p);
                }
                Err(e) => errors.push((id.clone(), e)),
            }
        }
        if errors.is_empty() {
            Ok(Self { channels })
        } else {
            Err(errors)
        }
    }
}
