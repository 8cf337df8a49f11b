//! A NATS backplane for sockeye's publish/subscribe hub (in progress):
//! the mapping of hub topics to NATS subjects.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod subject;
