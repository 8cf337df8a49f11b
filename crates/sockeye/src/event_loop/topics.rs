//! One loop's topics: who on this loop is subscribed to what. A publish
//! reaches every loop (see `Shared::publish`); each delivers to its own
//! subscribers, so no lock is taken per delivery.

use std::collections::HashMap;
use std::sync::Arc;

use super::remote::ConnId;

#[derive(Default)]
pub(super) struct Topics {
    /// Subscribers on this loop, by topic.
    subscribers: HashMap<Arc<str>, Vec<ConnId>>,
    /// Topics by subscribed connection (by slot), to unsubscribe it when
    /// it ends. Connections that subscribe to nothing have no entry.
    by_connection: HashMap<u32, Vec<Arc<str>>>,
}

impl Topics {
    pub(super) fn subscribe(&mut self, topic: &str, id: ConnId) -> bool {
        let mine = self.by_connection.entry(id.slot).or_default();
        if mine.iter().any(|held| &**held == topic) {
            return false;
        }
        let key = match self.subscribers.get_key_value(topic) {
            Some((key, _)) => key.clone(),
            None => Arc::from(topic),
        };
        mine.push(key.clone());
        self.subscribers.entry(key).or_default().push(id);
        true
    }

    pub(super) fn unsubscribe(&mut self, topic: &str, id: ConnId) -> bool {
        let Some(mine) = self.by_connection.get_mut(&id.slot) else {
            return false;
        };
        let Some(position) = mine.iter().position(|held| &**held == topic) else {
            return false;
        };
        mine.swap_remove(position);
        if mine.is_empty() {
            self.by_connection.remove(&id.slot);
        }
        self.remove_subscriber(topic, id);
        true
    }

    pub(super) fn is_subscribed(&self, topic: &str, id: ConnId) -> bool {
        self.by_connection
            .get(&id.slot)
            .is_some_and(|mine| mine.iter().any(|held| &**held == topic))
    }

    /// Unsubscribes a connection that ended from everything.
    pub(super) fn remove_connection(&mut self, id: ConnId) {
        if let Some(mine) = self.by_connection.remove(&id.slot) {
            for topic in mine {
                self.remove_subscriber(&topic, id);
            }
        }
    }

    fn remove_subscriber(&mut self, topic: &str, id: ConnId) {
        if let Some(list) = self.subscribers.get_mut(topic) {
            if let Some(at) = list.iter().position(|held| *held == id) {
                list.swap_remove(at);
            }
            if list.is_empty() {
                self.subscribers.remove(topic);
            }
        }
    }

    /// The subscribers of `topic` on this loop.
    pub(super) fn subscribers(&self, topic: &str) -> &[ConnId] {
        self.subscribers.get(topic).map_or(&[], Vec::as_slice)
    }

    /// How many topics have subscribers on this loop.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.subscribers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(slot: u32) -> ConnId {
        ConnId {
            loop_index: 0,
            slot,
            generation: 1,
        }
    }

    #[test]
    fn subscriptions_are_counted_once_and_end_with_the_connection() {
        let mut topics = Topics::default();
        assert!(topics.subscribe("a", id(1)));
        assert!(!topics.subscribe("a", id(1)));
        assert!(topics.subscribe("b", id(1)));
        assert!(topics.subscribe("a", id(2)));
        assert_eq!(topics.subscribers("a"), &[id(1), id(2)]);
        assert!(topics.is_subscribed("b", id(1)));
        topics.remove_connection(id(1));
        assert_eq!(topics.subscribers("a"), &[id(2)]);
        assert!(topics.subscribers("b").is_empty());
        assert_eq!(topics.len(), 1);
        assert!(topics.unsubscribe("a", id(2)));
        assert!(!topics.unsubscribe("a", id(2)));
        assert_eq!(topics.len(), 0);
    }
}
