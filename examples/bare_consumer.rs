//! The floor for the daemon's throughput through a broker: a bare rdkafka consumer
//! reading N messages of a topic (payload touched, nothing decoded), same client settings
//! and the same hand-over (one message stream polled for the whole read).
//!
//! cargo run --release --example bare_consumer -- BROKERS TOPIC N

use std::time::Instant;

use futures_core::Stream as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, topic, n] = args.as_slice() else {
        eprintln!("usage: bare_consumer BROKERS TOPIC N");
        std::process::exit(2);
    };
    let n: u64 = n.parse().expect("N is a number");
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bare-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.offset.store", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic.as_str()]).expect("subscribe");
    let mut started = None;
    let mut bytes = 0usize;
    // one stream for the whole read, as the daemon's loop has it (`recv` makes one per message)
    let mut stream = consumer.stream();
    for _ in 0..n {
        let m = std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx))
            .await
            .expect("kafka streams never terminate")
            .expect("message");
        started.get_or_insert_with(Instant::now);
        bytes += m.payload().map_or(0, <[u8]>::len);
    }
    let secs = started.expect("read something").elapsed().as_secs_f64();
    println!("bare consumer: {n} messages ({bytes} bytes) in {secs:.3} s: {:.0} messages/s", n as f64 / secs);
}
