//! Validation of `[person]`, `[contacts.*]`, `never_contact` and references to recipients.

use super::*;

impl<'s> Validator<'s> {
    pub(super) fn recipient_common(
        &mut self,
        table: &Table,
        id: &str,
        section: &str,
        header: &Span,
        channels: &BTreeMap<String, Channel>,
        default_tz: Option<Tz>,
    ) -> Option<Recipient> {
        let address_keys = &address_fields(channels);
        let name = self.required_string(table, "name", section, header);
        let timezone = if default_tz.is_none() && self.get(table, "timezone").is_none() {
            self.error(
                header.clone(),
                format!("missing `timezone` in {section}"),
                Some(
                    "add e.g. `timezone = \"Europe/Berlin\"`: every time in the plan is read in it"
                        .into(),
                ),
            );
            None
        } else if self.get(table, "timezone").is_some() {
            self.timezone(table)
        } else {
            default_tz
        };
        let quiet_hours = self.quiet_hours(table);
        let mut addresses = BTreeMap::new();
        for (k, v) in table.iter() {
            let key = k.get_ref().as_ref();
            let free = !CONTACT_KEYS.contains(&key) && is_free_address(key, v.get_ref());
            if key == "email" || key == "phone" || address_keys.contains(key) || free {
                match v.get_ref() {
                    DeValue::String(s) if !s.trim().is_empty() => {
                        if key == "email" && !s.contains('@') {
                            self.error(v.span(), format!("`{s}` is not an email address"), None);
                        }
                        if key == "phone"
                            && !(s.starts_with('+')
                                && s[1..].chars().all(|c| c.is_ascii_digit() || c == ' ')
                                && s.len() > 4)
                        {
                            self.error(
                                v.span(),
                                format!("`{s}` is not a phone number in international form"),
                                Some(
                                    "write it with the country code, e.g. `\"+4915112345678\"`"
                                        .into(),
                                ),
                            );
                        }
                        addresses.insert(key.to_string(), s.to_string());
                    }
                    DeValue::String(_) => self.error(v.span(), format!("`{key}` is empty"), None),
                    other => self.type_error(v.span(), key, "a string", other),
                }
            }
        }
        let reach = self.check_reach(table, &addresses, section, channels);
        // Keep going with placeholders when name or zone failed (their errors are already
        // recorded, so the plan won't load), so later checks still see this recipient.
        Some(Recipient {
            id: id.to_string(),
            name: name.map(|n| n.0).unwrap_or_default(),
            timezone: timezone.unwrap_or(Tz::UTC),
            quiet_hours,
            addresses,
            reach,
            relation: None,
            consent: None,
            invite: false,
            span: header.clone(),
        })
    }

    /// Keys that are free-form addresses (`ntfy_topic`, `signal_number`): string values whose
    /// name is not a near-miss of a known key. One no channel delivers to gets a warning.
    pub(super) fn free_addresses(
        &mut self,
        table: &Table,
        section: &str,
        known: &[&str],
        used: &BTreeSet<String>,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (k, v) in table.iter() {
            let key = k.get_ref().as_ref();
            if known.contains(&key) || used.contains(key) || !is_free_address(key, v.get_ref()) {
                continue;
            }
            if did_you_mean(key, known.iter().copied()).is_some() {
                continue; // a likely typo: `check_keys` reports it with a suggestion
            }
            self.warn(
                k.span(),
                format!("`{key}` in {section} is not a known key, so it is read as an address, but no channel delivers to it"),
                Some(format!("known keys: {}; a channel uses an address through its plugin or `address = \"{key}\"`", list(known))),
            );
            out.insert(key.to_string());
        }
        out
    }

    pub(super) fn person(
        &mut self,
        doc: &Table,
        channels: &BTreeMap<String, Channel>,
    ) -> Option<Recipient> {
        let address_keys = &address_fields(channels);
        let Some((v, span)) = self.get(doc, "person") else {
            self.error(
                0..0,
                "missing `[person]` table",
                Some(
                    "every plan starts with `[person]`, giving at least `name` and `timezone`"
                        .into(),
                ),
            );
            return None;
        };
        let Some(table) = v.get_ref().as_table() else {
            self.type_error(span, "person", "a table", v.get_ref());
            return None;
        };
        let extra = self.free_addresses(table, "[person]", PERSON_KEYS, address_keys);
        self.check_keys(table, "[person]", PERSON_KEYS, &|k| {
            address_keys.contains(k) || extra.contains(k)
        });
        if let Some(d) = self.max_snooze(table) {
            self.max_snooze = d;
        }
        if let Some(l) = self.language(table) {
            self.language = l;
        }
        self.plan_id = self.plan_id(table);
        self.recipient_common(table, SELF_ID, "[person]", &span, channels, None)
    }

    /// `max_snooze`: how long snoozing may put off one check-in or dose in all (at most a
    /// day; `"0m"` turns snoozing off).
    pub(super) fn max_snooze(&mut self, table: &Table) -> Option<PlanDuration> {
        let (s, span) = self.string(table, "max_snooze")?;
        let d = self.duration(&s, &span, "max_snooze")?;
        if d.as_secs() > 86_400 {
            self.error(
                span,
                format!("`max_snooze = \"{s}\"` is more than a day"),
                Some("a snooze puts off the answer deadline and any alert; keep it short, e.g. `\"2h\"`".into()),
            );
            return None;
        }
        Some(d)
    }

    /// `id`: the plan's id, which the ledger keys everything by when several plans share
    /// it (so renaming the file changes nothing). Letters, digits, `-` and `_`.
    fn plan_id(&mut self, table: &Table) -> Option<String> {
        let (s, span) = self.string(table, "id")?;
        if !crate::vocab::is_plan_id(&s) {
            self.error(
                span,
                format!("`id = \"{s}\"` can't be a plan id"),
                Some("use letters, digits, `-` and `_` (at most 64), such as `\"robin\"`".into()),
            );
            return None;
        }
        Some(s)
    }

    /// `language`: a BCP 47 tag (`"en"`, `"de-AT"`), for the words SMS replies may use.
    fn language(&mut self, table: &Table) -> Option<String> {
        let (s, span) = self.string(table, "language")?;
        if !crate::vocab::is_language_tag(&s) {
            self.error(
                span,
                format!("`language = \"{s}\"` is not a language tag"),
                Some("write a BCP 47 tag such as `\"en\"`, `\"de\"` or `\"pt-BR\"`".into()),
            );
            return None;
        }
        if crate::vocab::reply_words(&s).is_none() {
            self.warn(
                span.clone(),
                format!("kithd knows no reply words in `{s}`: SMS replies are read in English"),
                Some(format!(
                    "reply words exist for {}",
                    crate::vocab::REPLY_LANGUAGES.join(", ")
                )),
            );
        }
        Some(s)
    }

    /// Ids of the contacts whose table says `quiet_hours` (a window or `"none"`).
    pub(super) fn contacts_with_own_quiet_hours(&mut self, doc: &Table) -> BTreeSet<String> {
        let Some((v, _)) = self.get(doc, "contacts") else {
            return BTreeSet::new();
        };
        let Some(table) = v.get_ref().as_table() else {
            return BTreeSet::new();
        };
        table
            .iter()
            .filter(|(_, v)| {
                v.get_ref()
                    .as_table()
                    .is_some_and(|t| t.contains_key("quiet_hours"))
            })
            .map(|(k, _)| k.get_ref().to_string())
            .collect()
    }

    pub(super) fn contacts(
        &mut self,
        doc: &Table,
        channels: &BTreeMap<String, Channel>,
        default_tz: Tz,
    ) -> BTreeMap<String, Recipient> {
        let address_keys = &address_fields(channels);
        let mut out = BTreeMap::new();
        let Some((v, span)) = self.get(doc, "contacts") else {
            return out;
        };
        let Some(table) = v.get_ref().as_table() else {
            self.type_error(
                span,
                "contacts",
                "a table of `[contacts.ID]` tables",
                v.get_ref(),
            );
            return out;
        };
        for (k, v) in table.iter() {
            let id = k.get_ref().to_string();
            let section = format!("[contacts.{id}]");
            if id == SELF_ID {
                self.error(
                    k.span(),
                    "`self` is reserved for the person and can't be a contact id",
                    None,
                );
                continue;
            }
            if !valid_id(&id) {
                self.error(
                    k.span(),
                    format!("contact id `{id}` may use only letters, digits, `_`, `-` and `.`"),
                    None,
                );
            }
            let Some(ct) = v.get_ref().as_table() else {
                self.type_error(v.span(), &id, "a table", v.get_ref());
                continue;
            };
            let header = v.span();
            let extra = self.free_addresses(ct, &section, CONTACT_KEYS, address_keys);
            self.check_keys(ct, &section, CONTACT_KEYS, &|k| {
                address_keys.contains(k) || extra.contains(k)
            });
            let relation = self.string(ct, "relation").and_then(|(r, rspan)| {
                let rel = Relation::parse(&r);
                if rel.is_none() {
                    let hint = match did_you_mean(&r, Relation::NAMES) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("one of {}", list(&Relation::NAMES)),
                    };
                    self.error(rspan, format!("unknown relation `{r}`"), Some(hint));
                }
                rel
            });
            let consent = self.textual(ct, "consent").and_then(|(c, cspan)| {
                let d: Option<NaiveDate> = schedule_spec::parse_date(&c);
                if d.is_none() {
                    self.error(
                        cspan,
                        format!("`consent` must be the date the contact agreed, found `{c}`"),
                        Some(format!(
                            "write it as a date, e.g. `consent = 2026-11-02`; {}",
                            schedule_spec::YEAR_RANGE
                        )),
                    );
                }
                d
            });
            if let Some(mut r) =
                self.recipient_common(ct, &id, &section, &header, channels, Some(default_tz))
            {
                r.relation = relation;
                r.invite =
                    consent.is_none() && self.boolean(ct, "invite").unwrap_or(self.invite_default);
                if r.invite {
                    self.warn(
                        header.clone(),
                        format!("contact `{id}` is to be asked first: no alert goes to them until they reply YES"),
                        Some(format!("ask them with `kithd invite PLAN {id}`; `kithd status` shows who is still asked")),
                    );
                }
                r.consent = consent;
                out.insert(id, r);
            }
        }
        out
    }

    pub(super) fn never_contact(
        &mut self,
        doc: &Table,
        contacts: &BTreeMap<String, Recipient>,
    ) -> Vec<String> {
        let Some(list) = self.strings(doc, "never_contact") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (id, span) in list {
            if !contacts.contains_key(&id) {
                self.unknown_contact(&id, span, contacts, "never_contact");
                continue;
            }
            out.push(id);
        }
        out
    }

    pub(super) fn unknown_contact(
        &mut self,
        id: &str,
        span: Span,
        contacts: &BTreeMap<String, Recipient>,
        key: &str,
    ) {
        let hint = match did_you_mean(id, contacts.keys().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`?"),
            None if contacts.is_empty() => "define the contact as a `[contacts.ID]` table".into(),
            None => format!("contacts in this plan: {}", list_owned(contacts.keys())),
        };
        self.error(
            span,
            format!("unknown contact `{id}` in `{key}`"),
            Some(hint),
        );
    }

    pub(super) fn check_recipient(
        &mut self,
        r: &str,
        span: &Span,
        person: Option<&Recipient>,
        contacts: &BTreeMap<String, Recipient>,
        section: &str,
    ) -> bool {
        if self.never_contact.contains(r) {
            self.error(
                span.clone(),
                format!("{section} would message contact `{r}`, who is on the plan's `never_contact` list"),
                None,
            );
            return false;
        }
        let recipient = if r == SELF_ID {
            person
        } else {
            match contacts.get(r) {
                Some(c) => {
                    if c.consent.is_none() {
                        self.error(
                            span.clone(),
                            format!("{section} would message contact `{r}`, who has not consented"),
                            Some(format!(
                                "kithd never messages a contact without consent: once {} has agreed, add `consent = YYYY-MM-DD` to [contacts.{r}]",
                                c.name
                            )),
                        );
                        return false;
                    }
                    Some(c)
                }
                None => {
                    if !contacts.contains_key(r) {
                        let mut names: Vec<&str> = contacts.keys().map(String::as_str).collect();
                        names.push(SELF_ID);
                        let hint = match did_you_mean(r, names) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => {
                                "use `self` for the person or a contact id from `[contacts.ID]`"
                                    .into()
                            }
                        };
                        self.error(
                            span.clone(),
                            format!("unknown recipient `{r}` in `to`"),
                            Some(hint),
                        );
                    }
                    return false;
                }
            }
        };
        if let Some(rec) = recipient
            && rec.reach.is_empty()
        {
            let where_ = if r == SELF_ID {
                "[person]".to_string()
            } else {
                format!("[contacts.{r}]")
            };
            self.error(
                span.clone(),
                format!("recipient `{r}` has no `reach` channels"),
                Some(format!("add e.g. `reach = [\"console\"]` to {where_}")),
            );
            return false;
        }
        true
    }
}
