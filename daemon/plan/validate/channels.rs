//! Validation of `[channels.*]`: plugin, typed host keys (limits, pins), declared
//! settings, and each recipient's `reach`.

use super::*;

impl<'s> Validator<'s> {
    /// Reads `reach`: each entry must name a channel, once, whose address field the
    /// recipient has. Returns the channel ids.
    pub(super) fn check_reach(
        &mut self,
        table: &Table,
        addresses: &BTreeMap<String, String>,
        section: &str,
        channels: &BTreeMap<String, Channel>,
    ) -> Vec<String> {
        let Some(entries) = self.strings(table, "reach") else {
            return Vec::new();
        };
        let reach = entries.iter().map(|(c, _)| c.clone()).collect();
        let mut seen = BTreeSet::new();
        for (ch, span) in entries {
            if !seen.insert(ch.clone()) {
                self.error(
                    span,
                    format!("channel `{ch}` is listed twice in `reach`"),
                    None,
                );
                continue;
            }
            match channels.get(&ch) {
                None => {
                    let hint = match did_you_mean(&ch, channels.keys().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if channels.is_empty() => {
                            "define it as a `[channels.NAME]` table".into()
                        }
                        None => format!("channels in this plan: {}", list_owned(channels.keys())),
                    };
                    self.error(
                        span,
                        format!("unknown channel `{ch}` in {section} `reach`"),
                        Some(hint),
                    );
                }
                Some(c) => {
                    if let Some(field) = &c.address
                        && !addresses.contains_key(field)
                    {
                        self.error(
                            span,
                            format!("{section} has no `{field}` address, which channel `{ch}` ({}) delivers to", c.plugin),
                            Some(format!("add `{field} = \"…\"` to {section}, or reach them through another channel")),
                        );
                    }
                }
            }
        }
        reach
    }

    pub(super) fn channels(
        &mut self,
        doc: &Table,
        catalog: &dyn PluginCatalog,
    ) -> BTreeMap<String, Channel> {
        let mut out = BTreeMap::new();
        let Some((v, span)) = self.get(doc, "channels") else {
            return out;
        };
        let Some(table) = v.get_ref().as_table() else {
            self.type_error(
                span,
                "channels",
                "a table of `[channels.NAME]` tables",
                v.get_ref(),
            );
            return out;
        };
        for (k, v) in table.iter() {
            let id = k.get_ref().to_string();
            let section = format!("[channels.{id}]");
            if !valid_id(&id) {
                self.error(
                    k.span(),
                    format!("channel id `{id}` may use only letters, digits, `_`, `-` and `.`"),
                    None,
                );
            }
            let Some(ct) = v.get_ref().as_table() else {
                self.type_error(v.span(), &id, "a table", v.get_ref());
                continue;
            };
            let header = v.span();
            let Some((plugin, pspan)) = self.required_string(ct, "plugin", &section, &header)
            else {
                continue;
            };
            let info = catalog.lookup(&plugin);
            if info.is_none() {
                let names = catalog.names();
                let hint = match did_you_mean(&plugin, names.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "known plugins: {}; or put `{}.rhai` in the plugin directory ({}; another with `--plugins DIR`)",
                        list_owned(names.iter()),
                        plugin.trim_end_matches(".rhai"),
                        match catalog.searched() {
                            Some(dir) => format!("searched: {dir}"),
                            None => "bundled plugins only".into(),
                        }
                    ),
                };
                self.error(
                    pspan.clone(),
                    format!("unknown plugin `{plugin}` for channel `{id}`"),
                    Some(hint),
                );
            }
            let declared = info.as_ref().and_then(|i| i.settings.clone());
            let mut address = info.and_then(|i| i.address);
            let mut settings = BTreeMap::new();
            let mut setting_spans = BTreeMap::new();
            let mut limits = ChannelLimits::default();
            for (sk, sv) in ct.iter() {
                let key = sk.get_ref().to_string();
                if key == "plugin" {
                    continue;
                }
                if key == "address" {
                    match sv.get_ref() {
                        DeValue::String(s) if valid_id(s) => address = Some(s.to_string()),
                        DeValue::String(s) => self.error(
                            sv.span(),
                            format!("`address` must name an address field, not `{s}`"),
                            None,
                        ),
                        other => self.type_error(sv.span(), "address", "a string", other),
                    }
                    continue;
                }
                if HOST_CHANNEL_KEYS.contains(&key.as_str()) {
                    self.channel_limit(&key, sv, &mut limits);
                } else {
                    self.undeclared_setting(&key, sk.span(), &plugin, declared.as_deref());
                }
                if let Some(s) = self.setting(&key, sv) {
                    if looks_secret(&key) && matches!(s, Setting::String(_)) {
                        let name = format!("{id}_{key}");
                        self.warn(
                            sv.span(),
                            format!("`{key}` in {section} holds a literal value that looks secret"),
                            Some(format!(
                                "write `{key} = {{ secret = \"{name}\" }}` and provide it as systemd credential `{name}` or environment variable `KITHD_SECRET_{}`",
                                name.to_ascii_uppercase()
                            )),
                        );
                    }
                    setting_spans.insert(key.clone(), sv.span());
                    settings.insert(key, s);
                }
            }
            out.insert(
                id.clone(),
                Channel {
                    id,
                    plugin,
                    address,
                    settings,
                    limits,
                    span: pspan,
                    setting_spans,
                },
            );
        }
        out
    }

    /// A key of a channel that neither the host nor its plugin reads: an error when the
    /// plugin declares its settings, a warning when it doesn't say.
    pub(super) fn undeclared_setting(
        &mut self,
        key: &str,
        span: Span,
        plugin: &str,
        declared: Option<&[String]>,
    ) {
        // The host also reads the setting that names where requests may go.
        let known: Vec<&str> = HOST_CHANNEL_KEYS
            .iter()
            .copied()
            .chain(["plugin", "address", "url", "api_base", "server", "host"])
            .chain(declared.unwrap_or_default().iter().map(String::as_str))
            .collect();
        if known.contains(&key) {
            return;
        }
        let hint = did_you_mean(key, known.iter().copied()).map(|s| format!("did you mean `{s}`?"));
        match declared {
            Some(d) => {
                let hint = hint.unwrap_or_else(|| {
                    format!(
                        "the host reads {}; plugin `{plugin}` reads {}",
                        list(HOST_CHANNEL_KEYS),
                        if d.is_empty() {
                            "nothing else".to_string()
                        } else {
                            list_owned(d.iter())
                        }
                    )
                });
                self.error(
                    span,
                    format!("unknown setting `{key}` for plugin `{plugin}`"),
                    Some(hint),
                );
            }
            None => self.warn(
                span,
                format!(
                    "plugin `{plugin}` does not declare its settings, so `{key}` can't be checked"
                ),
                Some(hint.unwrap_or_else(|| {
                    "a plugin can list the settings it reads with `fn settings() { [\"key\", …] }`"
                        .into()
                })),
            ),
        }
    }

    /// One of the host's channel settings, parsed into its typed value.
    pub(super) fn channel_limit(
        &mut self,
        key: &str,
        v: &Spanned<DeValue>,
        limits: &mut ChannelLimits,
    ) {
        let span = v.span();
        match key {
            "tls_sha256" => {
                let ok = matches!(v.get_ref(), DeValue::String(t)
                    if t.chars().filter(|c| *c != ':').count() == 64
                        && t.chars().all(|c| c.is_ascii_hexdigit() || c == ':'));
                if !ok {
                    self.error(
                        span,
                        "`tls_sha256` must be the certificate's SHA-256: 64 hex digits, colons allowed",
                        Some("`openssl x509 -noout -fingerprint -sha256 -in server.pem`".into()),
                    );
                }
            }
            "timeout" | "give_up_after" | "retry_base" => {
                let DeValue::String(text) = v.get_ref() else {
                    self.type_error(span, key, "a duration such as \"30s\"", v.get_ref());
                    return;
                };
                let Some(d) = self.duration(text, &span, key) else {
                    return;
                };
                let (lo, hi, range) = match key {
                    "timeout" => (1, 600, "between 1s and 10m"),
                    "retry_base" => (1, 86_400, "between 1s and 1d"),
                    _ => (60, 10 * 366 * 86_400, "at least 1m"),
                };
                if !(lo..=hi).contains(&d.as_secs()) {
                    self.error(span, format!("`{key}` must be {range}"), None);
                    return;
                }
                match key {
                    "timeout" => limits.timeout = Some(d),
                    "retry_base" => limits.retry_base = Some(d),
                    _ => limits.give_up_after = Some(d),
                }
            }
            _ => {
                let (lo, hi) = if key == "concurrency" {
                    (1, 256)
                } else {
                    (1, 100)
                };
                let n = match v.get_ref() {
                    DeValue::Integer(i) => {
                        i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
                    }
                    other => {
                        self.type_error(span, key, "a whole number", other);
                        return;
                    }
                };
                match n.filter(|n| (lo..=hi).contains(n)) {
                    Some(n) if key == "concurrency" => limits.concurrency = Some(n as u32),
                    Some(n) => limits.max_attempts = Some(n as u32),
                    None => {
                        self.error(span, format!("`{key}` must be between {lo} and {hi}"), None)
                    }
                }
            }
        }
    }

    pub(super) fn setting(&mut self, key: &str, v: &Spanned<DeValue>) -> Option<Setting> {
        Some(match v.get_ref() {
            DeValue::String(s) => Setting::String(s.to_string()),
            DeValue::Integer(i) => {
                match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                    Ok(n) => Setting::Integer(n),
                    Err(_) => {
                        self.error(v.span(), format!("`{key}` is not a valid integer"), None);
                        return None;
                    }
                }
            }
            DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
                Ok(x) => Setting::Float(x),
                Err(_) => {
                    self.error(v.span(), format!("`{key}` is not a valid number"), None);
                    return None;
                }
            },
            DeValue::Boolean(b) => Setting::Bool(*b),
            DeValue::Datetime(d) => Setting::String(d.to_string()),
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for e in a.iter() {
                    out.push(self.setting(key, e)?);
                }
                Setting::List(out)
            }
            DeValue::Table(t) => {
                let is_secret = t.iter().any(|(k, _)| k.get_ref().as_ref() == "secret");
                if is_secret {
                    if t.len() != 1 {
                        self.error(
                            v.span(),
                            format!("`{key}`: a secret reference has only the `secret` key"),
                            None,
                        );
                        return None;
                    }
                    let (name, span) = self.string(t, "secret")?;
                    if !valid_id(&name) || name.contains('.') {
                        self.error(
                            span,
                            format!(
                                "secret name `{name}` may use only letters, digits, `_` and `-`"
                            ),
                            None,
                        );
                        return None;
                    }
                    // kithd's own keys (`plugin::grant::RESERVED_SECRETS`): no script may
                    // reach them, so no channel may name them.
                    if ["answer_key", "inbound_token"].contains(&name.as_str()) {
                        self.error(
                            span,
                            format!("`{name}` is kithd's own secret; a channel can't use it"),
                            Some("give the channel a secret of its own".into()),
                        );
                        return None;
                    }
                    Setting::Secret(name)
                } else {
                    let mut out = BTreeMap::new();
                    for (k, e) in t.iter() {
                        out.insert(k.get_ref().to_string(), self.setting(k.get_ref(), e)?);
                    }
                    Setting::Table(out)
                }
            }
        })
    }
}
