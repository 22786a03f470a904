//! Runs one scenario: its servers (the world), its steps (servers and network here, clients
//! through the agent), and what was really published (the truth the checks compare with).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::agent::{self, Agent};
use crate::scenario::{Defaults, Scenario, Step};
use crate::world::World;

/// A message as the hub acknowledged it (an API answer, an SDK ack).
#[derive(Debug, Clone)]
pub struct Published {
    pub room: String,
    pub content: String,
    /// `api`, or the client that published it.
    pub by: String,
    pub ok: bool,
    pub id: Option<String>,
}

/// What was published, shared with background publishers.
#[derive(Default)]
pub struct Truth {
    pub published: Vec<Published>,
}

pub fn tag_of(content: &str) -> &str {
    content.rsplit_once('-').map_or(content, |(tag, _)| tag)
}

fn contents(tag: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{tag}-{i}")).collect()
}

impl Truth {
    /// Messages of `room` with one of `tags` that `client` should have received (not its own).
    pub fn expected_by(&self, client: &str, room: &str, tags: &[String]) -> Vec<Published> {
        self.published
            .iter()
            .filter(|p| {
                p.room == room
                    && tags.iter().any(|t| t == tag_of(&p.content))
                    && p.by != client
                    && p.ok
            })
            .cloned()
            .collect()
    }
}

pub struct Runner<'a> {
    pub scenario: &'a Scenario,
    pub defaults: &'a Defaults,
    pub world: World,
    pub agent: Agent,
    pub truth: Arc<Mutex<Truth>>,
    background: Vec<JoinHandle<Result<(), String>>>,
    pub timeout: Duration,
}

impl<'a> Runner<'a> {
    pub async fn start(
        scenario: &'a Scenario,
        defaults: &'a Defaults,
        hub_bin: &Path,
        log_dir: &Path,
    ) -> Result<Runner<'a>, String> {
        let world = World::start(&scenario.setup, &defaults.hub_env, hub_bin, log_dir).await?;
        Ok(Runner {
            scenario,
            defaults,
            world,
            agent: Agent::default(),
            truth: Arc::default(),
            background: Vec::new(),
            timeout: Duration::from_millis(defaults.step_timeout_ms),
        })
    }

    pub fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    pub async fn finish(mut self) {
        self.agent.close_all().await;
        for b in self.background.drain(..) {
            b.abort();
        }
        self.world.stop().await;
    }

    /// A `do` step.
    pub async fn act(&mut self, step: &Step, action: &str) -> Result<(), String> {
        match action {
            "client" => {
                let name = step.need(&step.client, "client")?;
                let via = step.need(&step.via, "via")?;
                let mut opts: BTreeMap<String, Value> = self.defaults.client_options.clone();
                opts.extend(step.options.clone().unwrap_or_default());
                let options = agent::options(&opts)?;
                let token = step
                    .token
                    .clone()
                    .map(|spec| (spec, self.world.secret.clone()));
                let url = self.world.url(via)?;
                let deadline = self.deadline();
                self.agent
                    .create(name, &url, token, options, deadline)
                    .await
            }
            "subscribe" => {
                let deadline = self.deadline();
                let room = step.need(&step.room, "room")?;
                let since = match &step.since_from {
                    Some(other) => {
                        let position = self.agent.room_rec(other, room)?.lock().position.clone();
                        Some(
                            position
                                .ok_or_else(|| format!("{other} kept no position in {room}"))?,
                        )
                    }
                    None => None,
                };
                self.agent
                    .subscribe(
                        step.need(&step.client, "client")?,
                        room,
                        step.history,
                        since,
                        step.again.unwrap_or(false),
                        deadline,
                    )
                    .await
            }
            "publish" => self.agent.publish(
                step.need(&step.client, "client")?,
                step.need(&step.room, "room")?,
                contents(
                    step.need(&step.tag, "tag")?,
                    *step.need(&step.count, "count")?,
                ),
                Duration::from_millis(step.interval_ms.unwrap_or(0)),
            ),
            "settle" => self.settle(step.need(&step.client, "client")?).await,
            "unsubscribe" => {
                self.agent
                    .unsubscribe(
                        step.need(&step.client, "client")?,
                        step.need(&step.room, "room")?,
                    )
                    .await
            }
            "close" => self.agent.close(step.need(&step.client, "client")?).await,
            "token_service" => self.agent.set_token_failing(
                step.need(&step.client, "client")?,
                !*step.need(&step.up, "up")?,
            ),
            "wait_messages" => self.wait_messages(step).await,
            "wait_state" => self.wait_state(step).await,
            "wait_recovery" => self.wait_recovery(step).await,
            "api_publish" => {
                let run = self.api_stream(step)?;
                if step.background == Some(true) {
                    self.background.push(run);
                    Ok(())
                } else {
                    run.await.map_err(|e| format!("publisher panicked: {e}"))?
                }
            }
            "wait_background" => {
                for run in self.background.drain(..) {
                    run.await
                        .map_err(|e| format!("publisher panicked: {e}"))??;
                }
                Ok(())
            }
            "kill_hub" => {
                let signal = step.signal.as_deref().unwrap_or("SIGKILL");
                if signal != "SIGKILL" {
                    return Err(format!("kill_hub with {signal}: this runner sends SIGKILL"));
                }
                self.world.kill_hub(step.need(&step.hub, "hub")?).await
            }
            "restart_hub" => self.world.restart_hub(step.need(&step.hub, "hub")?).await,
            "kill_redis" => self.world.kill_redis().await,
            "start_redis" => self.world.start_redis().await,
            "cut" => {
                self.world.proxy(step.need(&step.proxy, "proxy")?)?.cut();
                Ok(())
            }
            "proxy_down" => {
                self.world.proxy(step.need(&step.proxy, "proxy")?)?.down();
                Ok(())
            }
            "proxy_up" => {
                self.world.proxy(step.need(&step.proxy, "proxy")?)?.up();
                Ok(())
            }
            "stall" => self
                .world
                .proxy(step.need(&step.proxy, "proxy")?)?
                .stall(step.direction.as_deref().unwrap_or("both")),
            "sleep" => {
                tokio::time::sleep(Duration::from_millis(*step.need(&step.ms, "ms")?)).await;
                Ok(())
            }
            other => Err(format!("unknown step \"{other}\"")),
        }
    }

    /// Publishes `<tag>-<i>` through the hub's server API, `concurrency` at a time.
    fn api_stream(&self, step: &Step) -> Result<JoinHandle<Result<(), String>>, String> {
        let hub_name = step.need(&step.hub, "hub")?;
        let hub = self.world.hub(hub_name)?;
        let api_port = hub.api_port;
        let name = hub.name.clone();
        let room = step.need(&step.room, "room")?.clone();
        let list = contents(
            step.need(&step.tag, "tag")?,
            *step.need(&step.count, "count")?,
        );
        let concurrency = step.concurrency.unwrap_or(1).max(1);
        let interval = Duration::from_millis(step.interval_ms.unwrap_or(0));
        let scenario = self.scenario.name.clone();
        let truth = self.truth.clone();
        Ok(tokio::spawn(async move {
            let queue = Arc::new(Mutex::new(list.into_iter()));
            let mut workers = Vec::new();
            for _ in 0..concurrency {
                let (queue, truth, room, scenario, name) = (
                    queue.clone(),
                    truth.clone(),
                    room.clone(),
                    scenario.clone(),
                    name.clone(),
                );
                workers.push(tokio::spawn(async move {
                    let hub = crate::support::hub::Api::new(&name, api_port);
                    loop {
                        let Some(content) = queue.lock().await.next() else {
                            return Ok::<(), String>(());
                        };
                        // The same idempotency key on a retry: stored once through an outage.
                        let key = format!("{scenario}:{content}");
                        let answer = hub.publish(&room, &content, &key).await?;
                        truth.lock().await.published.push(Published {
                            room: room.clone(),
                            content,
                            by: "api".into(),
                            ok: true,
                            id: Some(answer.id),
                        });
                        if !interval.is_zero() {
                            tokio::time::sleep(interval).await;
                        }
                    }
                }));
            }
            for w in workers {
                w.await.map_err(|e| format!("publisher panicked: {e}"))??;
            }
            Ok(())
        }))
    }

    /// Waits until every publish of `client` is settled, and adds the acked ones to the truth.
    async fn settle(&mut self, client: &str) -> Result<(), String> {
        let rec = self.agent.client(client)?.rec.clone();
        let deadline = Instant::now() + self.timeout * 2;
        let done = rec
            .wait(deadline, |c| {
                c.running == 0 && c.publishes.iter().all(|p| p.settled)
            })
            .await;
        let publishes = rec.lock().publishes.clone();
        if !done {
            let left = publishes.iter().filter(|p| !p.settled).count();
            return Err(format!("{client}'s publishes did not settle ({left} left)"));
        }
        let mut truth = self.truth.lock().await;
        for p in publishes {
            let known = truth
                .published
                .iter()
                .any(|t| t.by == client && t.content == p.content);
            if !known {
                truth.published.push(Published {
                    room: p.room,
                    content: p.content,
                    by: client.to_owned(),
                    ok: p.ok,
                    id: p.id,
                });
            }
        }
        Ok(())
    }

    async fn wait_messages(&mut self, step: &Step) -> Result<(), String> {
        let client = step.need(&step.client, "client")?;
        let room = step.need(&step.room, "room")?;
        let want: Vec<String> = match &step.tags {
            Some(tags) => self
                .truth
                .lock()
                .await
                .expected_by(client, room, tags)
                .into_iter()
                .map(|p| p.content)
                .collect(),
            None => Vec::new(),
        };
        let count = step.count.unwrap_or(0);
        let rec = self.agent.room_rec(client, room)?;
        let deadline = self.deadline();
        let ok = rec
            .wait(deadline, |r| {
                r.messages.len() >= count && want.iter().all(|c| r.contents.contains(c))
            })
            .await;
        if ok {
            return Ok(());
        }
        let r = rec.lock();
        let missing: Vec<&String> = want
            .iter()
            .filter(|c| !r.contents.contains(*c))
            .take(20)
            .collect();
        Err(format!(
            "{client} did not get the messages in {room} within {:?}: has {}, missing e.g. {missing:?}",
            self.timeout,
            r.messages.len()
        ))
    }

    async fn wait_state(&mut self, step: &Step) -> Result<(), String> {
        let client = step.need(&step.client, "client")?;
        let state = step.need(&step.state, "state")?.clone();
        let code = step
            .code
            .as_ref()
            .map(|c| c.as_u64().map(|c| c as u16).ok_or("code: not a close code"))
            .transpose()?;
        let rec = self.agent.client(client)?.rec.clone();
        let since = match &step.after_last {
            Some(after) => rec
                .lock()
                .states
                .iter()
                .rev()
                .find(|s| &s.state == after)
                .map(|s| s.at),
            None => None,
        };
        let deadline = self.deadline();
        let hit = rec
            .wait(deadline, |c| {
                c.states.iter().any(|s| {
                    since.is_none_or(|at| s.at >= at)
                        && s.state == state
                        && code.is_none_or(|code| s.code == Some(code))
                })
            })
            .await;
        if hit {
            Ok(())
        } else {
            Err(format!(
                "{client} did not become {state}{} in time: {:?}",
                code.map(|c| format!(" ({c})")).unwrap_or_default(),
                rec.lock().states
            ))
        }
    }

    async fn wait_recovery(&mut self, step: &Step) -> Result<(), String> {
        let client = step.need(&step.client, "client")?;
        let room = step.need(&step.room, "room")?;
        let want = step.need(&step.matches, "match")?.clone();
        let rec = self.agent.room_rec(client, room)?;
        let deadline = self.deadline();
        let hit = rec
            .wait(deadline, |r| {
                r.recoveries
                    .iter()
                    .any(|e| crate::checks::recovery_fits(e, &want))
            })
            .await;
        if hit {
            Ok(())
        } else {
            Err(format!(
                "{client}: no recovery event like {want:?} in {room}"
            ))
        }
    }
}
