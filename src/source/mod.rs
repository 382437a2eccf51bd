//! Where inference logs come from: a Kafka consumer group (`kafka.rs`: client settings,
//! rebalance callbacks, offsets, dead letters) or a JSON Lines file (`file.rs`: the
//! replay driver).

pub mod file;
pub mod kafka;
