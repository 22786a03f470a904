//! Where webhook events wait in Redis: one stream (the queue, in the order events happened) and
//! the sender's lease, both under one hash tag so a Redis Cluster keeps them on one node.

#[derive(Debug, Clone)]
pub struct Keys {
    pub events: String,
    pub sender: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            events: format!("{prefix}{{webhooks}}:events"),
            sender: format!("{prefix}{{webhooks}}:sender"),
        }
    }
}
