//! The checks of a scenario (README's "Checks" table): each compares what the SDK told the
//! application, or what the hub stored, with the truth, and returns a one-line summary or why it
//! failed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use hub_client::Recovery;
use serde_json::Value;

use crate::agent::MsgRec;
use crate::runner::{Runner, tag_of};
use crate::scenario::Step;

/// Whether a recovery event has every field of `want` (the JS SDK's field names).
pub fn recovery_fits(e: &Recovery, want: &BTreeMap<String, Value>) -> bool {
    want.iter().all(|(k, v)| {
        let have = match k.as_str() {
            "recovered" => Value::Bool(e.recovered),
            "reason" => e.reason.clone().map_or(Value::Null, Value::String),
            "cause" => Value::String(e.cause.as_str().to_owned()),
            "replayed" => Value::from(e.replayed),
            "retrying" => Value::Bool(e.retrying),
            "skipped" => e.skipped.map_or(Value::Null, Value::from),
            _ => Value::Null,
        };
        &have == v
    })
}

fn as_map(v: &Value, what: &str) -> Result<BTreeMap<String, Value>, String> {
    serde_json::from_value(v.clone()).map_err(|_| format!("{what}: not an object"))
}

/// No message id twice, and offsets strictly increasing within each epoch, in delivery order.
fn in_order_once(messages: &[MsgRec], who: &str) -> Result<(), String> {
    let mut ids = HashSet::new();
    let mut last: HashMap<&str, u64> = HashMap::new();
    for m in messages {
        if !ids.insert(m.id.as_str()) {
            return Err(format!(
                "{who}: message {} ({}) delivered twice",
                m.id, m.content
            ));
        }
        if let (Some(epoch), Some(offset)) = (m.epoch.as_deref(), m.offset) {
            if let Some(before) = last.get(epoch)
                && offset <= *before
            {
                return Err(format!(
                    "{who}: offset {offset} ({}) after {before} in epoch {epoch}",
                    m.content
                ));
            }
            last.insert(epoch, offset);
        }
    }
    Ok(())
}

fn has_tag(content: &str, tags: &[String]) -> bool {
    tags.iter().any(|t| t == tag_of(content))
}

impl Runner<'_> {
    /// A `check` step: a summary, or why it failed.
    pub async fn check(&mut self, step: &Step, check: &str) -> Result<String, String> {
        match check {
            "exactly_once" | "at_most_once" => self.delivery(step, check == "exactly_once").await,
            "first_messages" => {
                let client = step.need(&step.client, "client")?;
                let room = step.need(&step.room, "room")?;
                let want = step.need(&step.contents, "contents")?;
                let rec = self.agent.room_rec(client, room)?;
                let r = rec.lock();
                let first: Vec<&MsgRec> = r.messages.iter().take(want.len()).collect();
                let got: Vec<&str> = first.iter().map(|m| m.content.as_str()).collect();
                if got != want.iter().map(String::as_str).collect::<Vec<_>>() {
                    return Err(format!(
                        "{client}'s first messages are {got:?}, not {want:?}"
                    ));
                }
                if step.replayed == Some(true) && !first.iter().all(|m| m.replayed) {
                    return Err("the history join marks them replayed: it did not".into());
                }
                Ok(format!("{client}: first {} as expected", want.len()))
            }
            "none_received" => {
                let client = step.need(&step.client, "client")?;
                let room = step.need(&step.room, "room")?;
                let tags = step.need(&step.tags, "tags")?;
                let rec = self.agent.room_rec(client, room)?;
                let got: Vec<String> = rec
                    .lock()
                    .messages
                    .iter()
                    .filter(|m| has_tag(&m.content, tags))
                    .map(|m| m.content.clone())
                    .collect();
                if got.is_empty() {
                    Ok(format!("{client}: none of {tags:?} in {room}"))
                } else {
                    Err(format!("{client} received what it must not: {got:?}"))
                }
            }
            "publishes" => self.publishes(step),
            "publish_rejected" => {
                let client = step.need(&step.client, "client")?;
                let room = step.need(&step.room, "room")?;
                let want = step
                    .need(&step.code, "code")?
                    .as_str()
                    .ok_or("code: not a string")?;
                match self
                    .agent
                    .publish_once(client, room, "after-close-0")
                    .await?
                {
                    Ok(()) => Err(format!("{client}: the publish was acked")),
                    Err(code) if code == want => Ok(format!("{client}: rejected with {code}")),
                    Err(code) => Err(format!("{client}: rejected with {code}, not {want}")),
                }
            }
            "stored_once" => self.stored_once(step).await,
            "publish_order" => {
                let room = step.need(&step.room, "room")?;
                let tags = step.need(&step.tags, "tags")?;
                let stored: Vec<String> = self
                    .world
                    .hub(step.need(&step.hub, "hub")?)?
                    .api()
                    .history(room)
                    .await?
                    .iter()
                    .filter_map(|m| m["content"].as_str())
                    .filter(|c| has_tag(c, tags))
                    .map(str::to_owned)
                    .collect();
                let published: Vec<String> = self
                    .truth
                    .lock()
                    .await
                    .published
                    .iter()
                    .filter(|p| &p.room == room && p.ok && has_tag(&p.content, tags))
                    .map(|p| p.content.clone())
                    .collect();
                if stored == published {
                    Ok(format!("{} stored in the order published", stored.len()))
                } else {
                    Err(format!(
                        "stored in another order than published:\nstored    {stored:?}\npublished {published:?}"
                    ))
                }
            }
            "recovery" => {
                let client = step.need(&step.client, "client")?;
                let room = step.need(&step.room, "room")?;
                let rec = self.agent.room_rec(client, room)?;
                let events = rec.lock().recoveries.clone();
                if let Some(has) = &step.has {
                    let want = as_map(has, "has")?;
                    if !events.iter().any(|e| recovery_fits(e, &want)) {
                        return Err(format!(
                            "{client} had no recovery event like {has}: {events:?}"
                        ));
                    }
                }
                if let Some(lacks) = &step.lacks {
                    let want = as_map(lacks, "lacks")?;
                    if events.iter().any(|e| recovery_fits(e, &want)) {
                        return Err(format!(
                            "{client} had a recovery event like {lacks}: {events:?}"
                        ));
                    }
                }
                Ok(format!("{client}: {} recovery events", events.len()))
            }
            "states" => {
                let client = step.need(&step.client, "client")?;
                let states = self.agent.client(client)?.rec.lock().states.clone();
                if let Some(has) = step.has.as_ref().and_then(Value::as_str)
                    && !states.iter().any(|s| s.state == has)
                {
                    return Err(format!("{client} was never {has}"));
                }
                if let Some(lacks) = step.lacks.as_ref().and_then(Value::as_str)
                    && states.iter().any(|s| s.state == lacks)
                {
                    return Err(format!("{client} was {lacks}: {states:?}"));
                }
                if let Some(code) = step.close_code
                    && !states.iter().any(|s| s.code == Some(code))
                {
                    return Err(format!("{client} never saw close code {code}"));
                }
                let drops = states
                    .windows(2)
                    .filter(|w| w[0].state == "connected" && w[1].state == "disconnected")
                    .count();
                if let Some(least) = step.disconnections_at_least
                    && drops < least
                {
                    return Err(format!("{client} dropped {drops} times (< {least})"));
                }
                Ok(format!(
                    "{client}: {drops} drops, {} state changes",
                    states.len()
                ))
            }
            "tokens" => {
                let client = step.need(&step.client, "client")?;
                let least = *step.need(&step.renewed_at_least, "renewed_at_least")?;
                let renewed = self.agent.client(client)?.rec.lock().tokens;
                if renewed >= least {
                    Ok(format!("{client}: token renewed {renewed} times"))
                } else {
                    Err(format!(
                        "{client} renewed its token {renewed} times (< {least})"
                    ))
                }
            }
            "presence" => {
                let client = step.need(&step.client, "client")?;
                let room = step.need(&step.room, "room")?;
                let least = *step.need(&step.count_at_least, "count_at_least")?;
                // Presence is written to Redis a moment after a join: ask until it shows.
                let deadline = self.deadline();
                loop {
                    let answer = self.agent.presence(client, room).await?;
                    if answer.room != *room {
                        return Err(format!("presence of {} answered for {room}", answer.room));
                    }
                    if answer.count >= least {
                        return Ok(format!("{client}: {} in {room}", answer.count));
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(format!(
                            "presence count {} < {least}: {answer:?}",
                            answer.count
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            other => Err(format!("unknown check \"{other}\"")),
        }
    }

    async fn delivery(&mut self, step: &Step, every: bool) -> Result<String, String> {
        let client = step.need(&step.client, "client")?;
        let room = step.need(&step.room, "room")?;
        let tags = step.need(&step.tags, "tags")?;
        let expected = self.truth.lock().await.expected_by(client, room, tags);
        let rec = self.agent.room_rec(client, room)?;
        let r = rec.lock();
        in_order_once(&r.messages, &format!("{client} in {room}"))?;
        let got: Vec<&MsgRec> = r
            .messages
            .iter()
            .filter(|m| has_tag(&m.content, tags))
            .collect();
        let by_content: HashMap<&str, &MsgRec> =
            got.iter().map(|m| (m.content.as_str(), *m)).collect();
        let unexpected: Vec<&str> = got
            .iter()
            .map(|m| m.content.as_str())
            .filter(|c| !expected.iter().any(|p| p.content == *c))
            .collect();
        if !unexpected.is_empty() {
            return Err(format!(
                "{client} received messages nobody published: {unexpected:?}"
            ));
        }
        for p in &expected {
            if let (Some(m), Some(id)) = (by_content.get(p.content.as_str()), &p.id)
                && &m.id != id
            {
                return Err(format!(
                    "{}: received under id {}, the hub acknowledged {id}",
                    p.content, m.id
                ));
            }
        }
        let missing: Vec<&str> = expected
            .iter()
            .filter(|p| !by_content.contains_key(p.content.as_str()))
            .map(|p| p.content.as_str())
            .collect();
        if every && !missing.is_empty() {
            return Err(format!(
                "{client} is missing messages in {room}: {missing:?}"
            ));
        }
        Ok(format!(
            "{client} in {room}: expected {}, received {}, missing {}",
            expected.len(),
            got.len(),
            missing.len()
        ))
    }

    fn publishes(&self, step: &Step) -> Result<String, String> {
        let client = step.need(&step.client, "client")?;
        let mine = self.agent.client(client)?.rec.lock().publishes.clone();
        if step.acked.as_deref() == Some("all") {
            let bad: Vec<_> = mine
                .iter()
                .filter(|p| !p.ok || p.id.is_none() || p.offset.is_none())
                .collect();
            if !bad.is_empty() {
                return Err(format!(
                    "{client}: publishes not acknowledged with an id and offset: {bad:?}"
                ));
            }
        }
        if let Some(rejected) = &step.rejected {
            let got: Vec<_> = mine
                .iter()
                .filter(|p| p.settled && !p.ok && p.code.as_deref() == Some(&rejected.code))
                .collect();
            if got.len() != rejected.count {
                return Err(format!(
                    "{client}: {} rejections with {}, not {}: {mine:?}",
                    got.len(),
                    rejected.code,
                    rejected.count
                ));
            }
            if let Some(maybe) = rejected.maybe_stored
                && !got.iter().all(|p| p.maybe_stored == Some(maybe))
            {
                return Err(format!("{client}: maybe_stored is not {maybe}: {got:?}"));
            }
        }
        let acked = mine.iter().filter(|p| p.ok).count();
        Ok(format!("{client}: {} publishes, {acked} acked", mine.len()))
    }

    async fn stored_once(&mut self, step: &Step) -> Result<String, String> {
        let room = step.need(&step.room, "room")?;
        let tags = step.need(&step.tags, "tags")?;
        let history = self
            .world
            .hub(step.need(&step.hub, "hub")?)?
            .api()
            .history(room)
            .await?;
        let stored: Vec<(&str, &str)> = history
            .iter()
            .filter_map(|m| Some((m["content"].as_str()?, m["id"].as_str()?)))
            .filter(|(c, _)| has_tag(c, tags))
            .collect();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (c, _) in &stored {
            *counts.entry(c).or_default() += 1;
        }
        let twice: Vec<&&str> = counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(c, _)| c)
            .collect();
        if !twice.is_empty() {
            return Err(format!("stored more than once in {room}: {twice:?}"));
        }
        let acked: Vec<_> = self
            .truth
            .lock()
            .await
            .published
            .iter()
            .filter(|p| &p.room == room && p.ok && has_tag(&p.content, tags))
            .cloned()
            .collect();
        for p in &acked {
            let Some((_, id)) = stored.iter().find(|(c, _)| *c == p.content) else {
                return Err(format!(
                    "{} was acknowledged but is not in the history",
                    p.content
                ));
            };
            if p.id.as_deref() != Some(*id) {
                return Err(format!(
                    "{}: the ack's id {:?} is not the stored one {id}",
                    p.content, p.id
                ));
            }
        }
        Ok(format!(
            "{} stored once each, {} acked",
            stored.len(),
            acked.len()
        ))
    }
}
