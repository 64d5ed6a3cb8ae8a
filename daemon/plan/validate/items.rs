//! Validation of the items (`[[checkin]]`, `[[medication]]`, `[[appointment]]`,
//! `[[followup]]`): their keys, messages, recipients and schedules.

use super::*;

impl<'s> Validator<'s> {
    /// Items are taken out of the document one by one and each table is dropped once read,
    /// so a large plan's parse tree is freed while its items are built.
    pub(super) fn items(
        &mut self,
        doc: &mut Table,
        person: Option<&Recipient>,
        contacts: &BTreeMap<String, Recipient>,
        person_tz: Tz,
    ) -> Vec<Arc<Item>> {
        if let Some(segments) = self.segments.take() {
            return self.items_one_by_one(&segments, person, contacts, person_tz);
        }
        let mut out = Vec::new();
        let mut ids: hashbrown::HashMap<String, Span> = hashbrown::HashMap::new();
        for kind in Kind::ALL {
            let Some(key) = doc
                .keys()
                .find(|k| k.get_ref().as_ref() == kind.as_str())
                .cloned()
            else {
                continue;
            };
            let Some(v) = doc.remove(&key) else { continue };
            let span = v.span();
            let DeValue::Array(arr) = v.into_inner() else {
                self.error(
                    span,
                    format!("`{kind}` must be a list of items"),
                    Some(format!("write each item under its own `[[{kind}]]` header")),
                );
                continue;
            };
            out.reserve(arr.len());
            for e in arr {
                out.extend(self.element(kind, &e, person, contacts, person_tz, &mut ids));
            }
        }
        out
    }

    /// The big-plan path: each item parsed from its own text (see `chunks`), in the same
    /// order as the whole-document path (kind by kind, in file order).
    fn items_one_by_one(
        &mut self,
        segments: &[chunks::Segment],
        person: Option<&Recipient>,
        contacts: &BTreeMap<String, Recipient>,
        person_tz: Tz,
    ) -> Vec<Arc<Item>> {
        let mut out = Vec::with_capacity(segments.len());
        let mut ids: hashbrown::HashMap<String, Span> = hashbrown::HashMap::new();
        for kind in Kind::ALL {
            for (_, range) in segments.iter().filter(|(k, _)| *k == kind) {
                let src = self.src;
                let Some(e) = chunks::item(&src[range.clone()], kind, range.start) else {
                    self.chunk_failed = true;
                    return Vec::new();
                };
                out.extend(self.element(kind, &e, person, contacts, person_tz, &mut ids));
            }
        }
        out
    }

    /// One element of a `[[kind]]` list: a table that validates into an item.
    fn element(
        &mut self,
        kind: Kind,
        e: &Spanned<DeValue>,
        person: Option<&Recipient>,
        contacts: &BTreeMap<String, Recipient>,
        person_tz: Tz,
        ids: &mut hashbrown::HashMap<String, Span>,
    ) -> Option<Arc<Item>> {
        let Some(t) = e.get_ref().as_table() else {
            self.type_error(e.span(), kind.as_str(), "a table", e.get_ref());
            return None;
        };
        let item = self.item(kind, t, &e.span(), person, contacts, person_tz, ids)?;
        Some(Arc::new(item))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn item(
        &mut self,
        kind: Kind,
        t: &Table,
        header: &Span,
        person: Option<&Recipient>,
        contacts: &BTreeMap<String, Recipient>,
        person_tz: Tz,
        ids: &mut hashbrown::HashMap<String, Span>,
    ) -> Option<Item> {
        let specific = kind_keys(kind);
        let all_keys: Vec<&str> = ITEM_KEYS
            .iter()
            .chain(specific)
            .chain(answer_keys(kind))
            .copied()
            .collect();
        let section = format!("[[{kind}]]");
        self.check_keys(t, &section, &all_keys, &|_| false);
        let id = self.required_string(t, "id", &section, header);
        if let Some((id, span)) = &id {
            if !valid_id(id) {
                self.error(
                    span.clone(),
                    format!("item id `{id}` may use only letters, digits, `_`, `-` and `.`"),
                    None,
                );
            } else if let Some(first) = ids.get(id) {
                let line = self.src[..first.start].matches('\n').count() + 1;
                self.error(
                    span.clone(),
                    format!("duplicate item id `{id}`"),
                    Some(format!("item ids must be unique across the plan; `{id}` is first used on line {line}")),
                );
            } else {
                ids.insert(id.clone(), span.clone());
            }
        }
        let section = match &id {
            Some((id, _)) => format!("[[{kind}]] `{id}`"),
            None => section,
        };
        let timezone = if self.get(t, "timezone").is_some() {
            self.timezone(t)
        } else {
            Some(person_tz)
        };
        let urgent = self.boolean(t, "urgent").unwrap_or(false);
        let catch_up = match self.string(t, "catch_up") {
            None => CatchUp::default_for(kind),
            Some((text, span)) => match text.as_str() {
                "always" => CatchUp::Always,
                "skip" => CatchUp::Skip,
                _ => match PlanDuration::parse(&text) {
                    Ok(d) if d.as_secs() > 0 => CatchUp::Within(d),
                    _ => {
                        self.error(
                            span,
                            format!("bad `catch_up` value `{text}`"),
                            Some("use `\"always\"`, `\"skip\"` or a duration such as `\"2h\"` (deliver if missed by less than that)".into()),
                        );
                        CatchUp::Skip
                    }
                },
            },
        };
        let respect_quiet_hours = self
            .boolean(t, "respect_quiet_hours")
            .unwrap_or(kind.respects_quiet_hours_by_default());

        let show_on_page = self.boolean(t, "show_on_page").unwrap_or(false);
        // Kind-specific fields.
        let mut fields = BTreeMap::new();
        let mut ok = true;
        for key in ["name", "dose", "title", "location"] {
            if specific.contains(&key)
                && let Some((v, _)) = self.string(t, key)
            {
                fields.insert(key.to_string(), v);
            }
        }
        if let Some(title) = fields.get("title")
            && !(1..=MAX_TITLE).contains(&title.chars().count())
            && let Some((_, span)) = self.string(t, "title")
        {
            self.error(
                span,
                format!("`title` must be 1 to {MAX_TITLE} characters"),
                Some("a short name for the page, e.g. `title = \"Evening check-in\"`".into()),
            );
            ok = false;
        }
        if kind == Kind::Medication && !fields.contains_key("name") {
            self.error(
                header.clone(),
                format!("missing `name` in {section}"),
                Some("the medication's name, e.g. `name = \"sertraline\"`".into()),
            );
            ok = false;
        }
        let with = if specific.contains(&"with") {
            match self.string(t, "with") {
                Some((w, wspan)) => {
                    if let Some(c) = contacts.get(&w) {
                        fields.insert("with".into(), c.name.clone());
                        fields.insert("contact".into(), c.name.clone());
                        if let Some(r) = c.relation {
                            fields.insert("relation".into(), r.as_str().into());
                        }
                        Some(w)
                    } else {
                        self.unknown_contact(&w, wspan, contacts, "with");
                        ok = false;
                        None
                    }
                }
                None if kind == Kind::Followup => {
                    self.error(
                        header.clone(),
                        format!("missing `with` in {section}"),
                        Some("name the contact to reach out to, e.g. `with = \"sam\"`".into()),
                    );
                    ok = false;
                    None
                }
                None => None,
            }
        } else {
            None
        };

        let schedule = self.schedule(kind, t, header, &section);
        let except = self.except(t);
        let allowed = kind_fields(kind);
        let message = match self.string(t, "message") {
            Some((m, mspan)) => self.template(&m, &mspan, "message", &allowed),
            None => {
                if self.get(t, "message").is_none() {
                    self.error(
                        header.clone(),
                        format!("missing `message` in {section}"),
                        Some(
                            "add the text to send, e.g. `message = \"How are you, {person}?\"`"
                                .into(),
                        ),
                    );
                }
                None
            }
        };
        let followup_message = match self.string(t, "followup_message") {
            Some((m, mspan)) => {
                let r = self.template(&m, &mspan, "followup_message", &allowed);
                if r.is_none() {
                    ok = false;
                }
                r
            }
            None => None,
        };
        let mut remind_before = Vec::new();
        if kind == Kind::Appointment {
            match self.strings(t, "remind_before") {
                Some(list) => {
                    for (s, span) in list {
                        match self.duration(&s, &span, "remind_before") {
                            Some(d) => remind_before.push(d),
                            None => ok = false,
                        }
                    }
                }
                None => {
                    remind_before = vec![
                        PlanDuration::parse("1d").ok()?,
                        PlanDuration::parse("2h").ok()?,
                    ];
                }
            }
            remind_before.sort();
            remind_before.dedup();
            remind_before.reverse();
        }
        let followup_after = match self.string(t, "followup_after") {
            Some((s, span)) => {
                let d = self.duration(&s, &span, "followup_after");
                ok &= d.is_some();
                d
            }
            None => None,
        };

        // Recipients: `self` or consenting contacts, each with somewhere to reach them.
        let to = match self.strings(t, "to") {
            Some(list) => {
                if list.is_empty() {
                    let span = self.get(t, "to").map(|(_, s)| s).unwrap_or(header.clone());
                    self.error(
                        span,
                        format!("`to` in {section} is empty"),
                        Some("leave `to` out to message only the person".into()),
                    );
                    ok = false;
                }
                let mut seen = BTreeSet::new();
                let mut out = Vec::new();
                for (r, span) in list {
                    if !seen.insert(r.clone()) {
                        self.error(
                            span,
                            format!("recipient `{r}` is listed twice in `to`"),
                            None,
                        );
                        ok = false;
                        continue;
                    }
                    if !self.check_recipient(&r, &span, person, contacts, &section) {
                        ok = false;
                    }
                    out.push(r);
                }
                out
            }
            None => {
                if let Some(p) = person
                    && p.reach.is_empty()
                {
                    self.error(
                        header.clone(),
                        format!(
                            "{section} messages the person, but `[person]` has no `reach` channels"
                        ),
                        Some("add e.g. `reach = [\"console\"]` to `[person]`".into()),
                    );
                    ok = false;
                }
                vec![SELF_ID.to_string()]
            }
        };
        if kind == Kind::Followup && to.iter().any(|r| r != SELF_ID) {
            let span = self.get(t, "to").map(|(_, s)| s).unwrap_or(header.clone());
            self.warn(
                span,
                format!("{section} nudges the person to reach out; it usually goes only to `self`"),
                None,
            );
        }

        let answer = if matches!(kind, Kind::Checkin | Kind::Medication) {
            match self.answer_policy(kind, t, header, &section, contacts) {
                Ok(a) => a,
                Err(()) => {
                    ok = false;
                    None
                }
            }
        } else {
            None
        };
        if let Some(m) = &message
            && m.fields().any(|(f, _)| f == "answer_url")
            && !self.has_server
        {
            let span = self
                .get(t, "message")
                .map(|(_, s)| s)
                .unwrap_or(header.clone());
            self.error(
                span,
                "`{answer_url}` needs a `[server]` table to answer through",
                Some("add `[server]` with `public_url`, or drop the placeholder".into()),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        let (id, span) = id?;
        let message = message?;
        let message = match self.messages.get(&message.source) {
            Some(shared) => shared.clone(),
            None => {
                let shared = Arc::new(message);
                self.messages.insert(shared.source.clone(), shared.clone());
                shared
            }
        };
        let to = match self.recipient_lists.get(&to) {
            Some(shared) => shared.clone(),
            None => {
                let shared: Arc<[String]> = to.clone().into();
                self.recipient_lists.insert(to, shared.clone());
                shared
            }
        };
        Some(Item {
            answer: answer.map(Box::new),
            id,
            span,
            kind,
            schedule: schedule?,
            timezone: timezone?,
            message,
            to,
            urgent,
            respect_quiet_hours,
            show_on_page,
            catch_up,
            fields,
            extra: {
                let extra = crate::plan::ItemExtra {
                    with,
                    remind_before,
                    followup_after,
                    followup_message,
                    except,
                };
                let none = extra.with.is_none()
                    && extra.remind_before.is_empty()
                    && extra.followup_after.is_none()
                    && extra.followup_message.is_none()
                    && extra.except.is_empty();
                (!none).then(|| Box::new(extra))
            },
        })
    }
}
