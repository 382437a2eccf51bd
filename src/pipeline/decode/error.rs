//! Why a message was not used: the one error every decoding path and the router give,
//! and the `reason` label of `driftd_decode_errors_total`.

use std::fmt;

/// Why a message was not used. The label is the `reason` of `driftd_decode_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeError {
    Oversized,
    NotJson,
    WrongType,
    MissingModel,
    UnknownModel,
    BadTimestamp,
    MissingTimestamp,
    /// A version beyond the model's `max_live_versions`: counted, not windowed.
    TooManyVersions,
    /// The model (or this version of it) has no reference yet.
    NoReference,
    /// An event time further ahead of the wall clock than the model's `max_future`.
    FutureTimestamp,
    /// A monitored feature named twice in one message (which value would count?).
    DuplicateFeature,
    /// A key of the message's own (`model`, `model_version`, `timestamp`, `prediction`,
    /// `features`) given twice: which model or time would count?
    DuplicateKey,
    /// An Open Inference Protocol tensor whose data disagrees with its shape, tensors of
    /// different row counts, or a 2-D tensor as wide as no feature list.
    BadTensor,
    /// An Open Inference Protocol datatype that is none of V2's.
    BadDatatype,
    /// A batch of more rows than `[kafka] max_batch_rows`.
    BatchTooLarge,
    /// A `BYTES` element marked `base64` that does not decode (to UTF-8 text).
    BadBase64,
    /// An Open Inference Protocol message that is neither JSON nor a V2 protobuf message.
    BadProtobuf,
    /// A V2 protobuf message whose side (request or response) neither its `ce-type`
    /// header, its topic's name nor its fields tell.
    UnknownSide,
}

impl DecodeError {
    pub const ALL: [DecodeError; 18] = [
        DecodeError::Oversized,
        DecodeError::NotJson,
        DecodeError::WrongType,
        DecodeError::MissingModel,
        DecodeError::UnknownModel,
        DecodeError::BadTimestamp,
        DecodeError::MissingTimestamp,
        DecodeError::TooManyVersions,
        DecodeError::NoReference,
        DecodeError::FutureTimestamp,
        DecodeError::DuplicateFeature,
        DecodeError::DuplicateKey,
        DecodeError::BadTensor,
        DecodeError::BadDatatype,
        DecodeError::BatchTooLarge,
        DecodeError::BadBase64,
        DecodeError::BadProtobuf,
        DecodeError::UnknownSide,
    ];

    /// The reason's place in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn reason(self) -> &'static str {
        match self {
            DecodeError::Oversized => "oversized",
            DecodeError::NotJson => "not_json",
            DecodeError::WrongType => "wrong_type",
            DecodeError::MissingModel => "missing_model",
            DecodeError::UnknownModel => "unknown_model",
            DecodeError::BadTimestamp => "bad_timestamp",
            DecodeError::MissingTimestamp => "missing_timestamp",
            DecodeError::TooManyVersions => "too_many_versions",
            DecodeError::NoReference => "no_reference",
            DecodeError::FutureTimestamp => "future_timestamp",
            DecodeError::DuplicateFeature => "duplicate_feature",
            DecodeError::DuplicateKey => "duplicate_key",
            DecodeError::BadTensor => "bad_tensor",
            DecodeError::BadDatatype => "bad_datatype",
            DecodeError::BatchTooLarge => "batch_too_large",
            DecodeError::BadBase64 => "bad_base64",
            DecodeError::BadProtobuf => "bad_protobuf",
            DecodeError::UnknownSide => "unknown_side",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}
