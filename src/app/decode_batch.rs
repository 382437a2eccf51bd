//! A batch of messages decoded on several cores (`[kafka] decode_threads`). Decoding
//! (parsing JSON, most of the work a message costs) needs nothing but the configuration,
//! so a large batch is cut into one slice per thread, decoded on rayon's threads; the
//! decoded events then enter the windows one by one in the order they were read, under
//! one lock, so windows, offsets and every counter come out exactly as with one thread.

use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};

use crate::pipeline::decode::open_inference::header_is;
use crate::pipeline::{DecodeError, Decoded as Event, Decoding, Headers, Message, Scratch};

/// A Kafka message's headers, read from librdkafka only when a format asks for one.
struct KafkaHeaders<'a>(&'a BorrowedMessage<'a>);

impl Headers for KafkaHeaders<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.0.headers()?.iter().find(|h| header_is(h.key, name)).and_then(|h| h.value)
    }
}

/// Below this many messages a batch is decoded on the consumer's thread: handing work
/// over would cost more than it saves.
const SPLIT_MIN: usize = 64;

/// A message of the batch: decoded, or left to the caller (`internal`: the partials
/// topic's, which are not inference logs).
pub(super) type Decoded<'a> = Option<Result<Event<'a>, DecodeError>>;

/// Decodes `messages` (read from `topics`, one per message: each topic name costs a call
/// into librdkafka and a UTF-8 check, so it is asked once) on up to `threads` threads,
/// message `i`'s features into `scratches[i]` (grown to the batch's size); `internal`
/// names the messages not to decode.
pub(super) fn decode_batch<'a>(
    decoding: &'a Decoding,
    messages: &'a [BorrowedMessage<'_>],
    topics: &[&'a str],
    internal: &(dyn Fn(&str) -> bool + Sync),
    scratches: &mut Vec<Scratch>,
    threads: usize,
) -> Vec<Decoded<'a>> {
    if scratches.len() < messages.len() {
        scratches.resize_with(messages.len(), Scratch::default);
    }
    let scratches = &mut scratches[..messages.len()];
    let decode_all =
        |messages: &'a [BorrowedMessage<'_>], topics: &[&'a str], scratches: &mut [Scratch]| -> Vec<Decoded<'a>> {
            messages
                .iter()
                .zip(topics)
                .zip(scratches)
                .map(|((m, topic), scratch)| {
                    (!internal(topic)).then(|| {
                        let headers = KafkaHeaders(m);
                        let message = Message {
                            payload: m.payload().unwrap_or_default(),
                            topic: Some(topic),
                            key: m.key(),
                            headers: &headers,
                        };
                        decoding.decode_message(&message, scratch)
                    })
                })
                .collect()
        };
    if threads < 2 || messages.len() < SPLIT_MIN {
        return decode_all(messages, topics, scratches);
    }
    use rayon::prelude::*;
    let slice = messages.len().div_ceil(threads);
    let slices: Vec<Vec<Decoded<'a>>> = messages
        .par_chunks(slice)
        .zip(topics.par_chunks(slice))
        .zip(scratches.par_chunks_mut(slice))
        .map(|((messages, topics), scratches)| decode_all(messages, topics, scratches))
        .collect();
    slices.into_iter().flatten().collect()
}
