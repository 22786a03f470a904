//! The one integration-test binary of hub-server: real `redis-server` and real hub-server processes
//! on free loopback ports, driven by real WebSocket clients (one binary, shared support code, as in
//! zero-to-production, so the support code is compiled once and the tests run in parallel).
//!
//! What each module proves (the "must hold" list of issue 2):
//! - `cross_hub`  — 1 exactly-once delivery across two and three hubs, rooms and broadcast;
//!   2 one PUBLISH per client message (Redis INFO commandstats); 3 two hubs with one HUB_NAME.
//! - `protocol`   — 4 welcome, join/leave/message/broadcast/ping, plain text, error frames.
//! - `outage`     — 5 Redis killed and restarted, Redis stalled with SIGSTOP/SIGCONT.
//! - `limits`     — 6 slow consumer, 1009, rate limit, Origin 403, pong timeout + Redis metadata.
//! - `standalone` — 7 no REDIS_URL.
//! - `shutdown`   — 8 SIGTERM.
//! - `history`    — issue 11: script per message, offsets, acks, recovery under load, late joiners,
//!   too_old/too_many/epoch_changed/unavailable, outage, SIGKILLed hub, standalone, bounded keys.
//! - `presence`   — issue 12: the same members on every hub, diffs once, leave delay, SIGKILL, Redis restart.
//! - `auth`       — issue 10: tokens, refusals (4001), grants, refresh/expiry (4002), 4008, no secrets in logs.
//! - `api`        — issue 12: the server API (publish once everywhere, idempotency across hubs,
//!   broadcast, history, disconnect 4003, 401/400/413/503), its listener, OpenAPI vs routes.
//! - `bridge`     — issue 14: a flood from other hubs shed within bounded memory; a rejoin while
//!   the room's UNSUBSCRIBE is held back by a proxy waits for the new subscription; a network
//!   partition (Redis in a namespace, iptables dropping one hub's link) noticed in time, nothing lost.
//! - `cluster`    — issue 15: a real 6-node Redis Cluster, 3 hubs, sharded pub/sub, slots, failover.
//! - `compression` — issue 24.1: permessage-deflate agreed, compressed once, small frames and
//!   clients without it plain, smaller windows, a deflate bomb (1009, memory flat), 1007.
//! - `handshake`  — issue 14.5: the RFC 6455 opening handshake's answers over raw TCP.
//! - `send_queue` — issue 14.2: a client that stops reading is closed past `send_queue_bytes`.
//! - `garbage`    — issue 14.6: 30 s of random bytes, HTTP, frames and messages; hub stays healthy.
//! - `failover`   — issue 25.5: a killed cluster master pauses only its rooms; the others deliver.
//! - `resubscribe` — issue 25.2: a room's last message (or its first since a join), published
//!   while a hub's pub/sub connection was cut and held back, or while a join that could not wait
//!   for its SUBSCRIBE was already told `joined`, or to a personal room never joined, reaches
//!   that hub's members once, from the history.
//! - `edges`      — issue 25.7: at the edges, counts that stay honest (no false `missed`).
//! - `redis_io`   — issue 25.2: a reply Redis sent in time is taken although the waiting task runs
//!   late (the hub's Redis sockets are read on a thread of their own).
//! - `stall`      — issue 25.3: Redis stalled 8 s while joins wait: pings, expiry, kicks still act.
//! - `namespaces` — issue 22: each namespace key on real hubs, unknown namespaces, a bad config,
//!   personal rooms on every hub, `subs` joined at connect and recovered after a reconnect.
//! - `sse`        — issue 24.2-3: the SSE fallback: chat across hubs beside WebSocket, single-use
//!   ids that expire and stay out of logs, Origin, rate limit and slow consumer as for WebSocket.
//! - `hooks`      — issue 23.1-4: the connect, subscribe, publish and rpc proxies against a real
//!   HTTP backend that checks every signature; slow, busy and dead backends fail closed.
//! - `webhooks`   — issue 23.5: each event once for the cluster (two hubs), in order per room; a
//!   receiver down for 60 s; a hub killed with events queued; a late answer (repeats dropped by id);
//!   SIGTERM; standalone. A real HTTP receiver checks signatures.
//! - `metrics`    — issues 12, 13: a real Prometheus scrapes two hubs' `/metrics`; every family moves
//!   when it should; `promtool check metrics`.
//!
//! No test listens for a while to show that nothing (more) arrives: it sends a marker after what
//! must not arrive, along the same path, and nothing unwanted may come before the marker
//! (`support::marker`). Shared set-ups: `support::two_hubs` (a Redis, two hubs, their clients),
//! `support::flood` (a slow consumer's hub and room).
//!
//! Run: `cargo test -p hub-server --test it` (needs `redis-server`, `redis-cli` and `prometheus` on
//! PATH, and root with `ip` and `iptables` for the partition test: `apt-get install redis-server
//! prometheus iproute2 iptables`). A failing test prints the tail of every hub's log.

mod support;

mod api;
mod api_batch;
mod auth;
mod bridge;
mod cluster;
mod compression;
mod cross_hub;
mod edges;
mod failover;
mod garbage;
mod handshake;
mod history;
mod hooks;
mod limits;
mod metrics;
mod namespaces;
mod outage;
mod presence;
mod protocol;
mod redis_io;
mod resubscribe;
mod send_queue;
mod shutdown;
mod sse;
mod stall;
mod standalone;
mod webhooks;
