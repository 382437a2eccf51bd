//! Produces the first N lines of a JSON Lines file to a topic (for benches/broker_bench.sh).
//!
//! cargo run --release --example produce_file -- BROKERS TOPIC FILE N

use std::io::BufRead;
use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, topic, file, n] = args.as_slice() else {
        eprintln!("usage: produce_file BROKERS TOPIC FILE N");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("N is a number");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let reader = std::io::BufReader::new(std::fs::File::open(file).expect("file opens"));
    for line in reader.lines().take(n) {
        let line = line.expect("readable");
        let mut record = Some(BaseRecord::<str, str>::to(topic).key("m1").payload(&line));
        while let Some(r) = record.take() {
            if let Err((_, r)) = producer.send(r) {
                producer.poll(Duration::from_millis(10));
                record = Some(r);
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    println!("produced {n} messages to {topic}");
}
