//! One inference-log message, as any producer may send it, into four pipelines: the
//! default layout, a mapped one (JSON pointers), the Open Inference Protocol (a V2 or V1
//! request or response of many rows, JSON or protobuf, bare or in a CloudEvent, joined
//! with its other half by request id, the halves left waiting taken alone every 64
//! inputs), and SageMaker Data Capture records. Windows of 50 events close as the input
//! goes, and each closed window is reported: decode, pair, route, accumulate, close.
#![no_main]

use std::sync::Mutex;

use driftd::config::Settings;
use driftd::pipeline::{report_window, Pipeline};
use libfuzzer_sys::fuzz_target;

const REFERENCE: &str = "x,n,c\n1.5,1,a\n2.5,2,b\n3.5,3,a\n-4.0,4,c\n0.0,5,b\n7.25,6,a\n";

fn pipeline(dir: &std::path::Path, mapping: &str) -> Pipeline {
    std::fs::create_dir_all(dir).unwrap();
    let reference = dir.join("reference.csv");
    std::fs::write(&reference, REFERENCE).unwrap();
    let toml = format!(
        "[kafka]\n{mapping}\n[[models]]\nname = \"m\"\nreference = \"{}\"\nfeatures = [\"x\", \"n\", \"c\"]\n\
         window = {{ events = 50 }}\n[state]\ndir = \"{}\"\n",
        reference.display(),
        dir.join("state").display()
    );
    let settings = Settings::from_toml(&toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    let refs = driftd::reference::resolve_blocking(&settings).unwrap();
    Pipeline::new(&settings, refs).unwrap()
}

struct Pipelines {
    _dir: tempfile::TempDir,
    all: Vec<Pipeline>,
    inputs: u64,
}

static PIPELINES: Mutex<Option<Pipelines>> = Mutex::new(None);

/// The two pipelines, their references profiled and calibrated: seconds in this
/// instrumented build, so it runs in libFuzzer's init, whose time `-timeout` does not count
/// (it did when the first input paid for it: a "timeout" on the empty input).
fn pipelines() -> Pipelines {
    let dir = tempfile::tempdir().unwrap();
    let mapped = "[kafka.mapping]\nmodel = \"/meta/model\"\ntimestamp = \"/meta/ts\"\nfeatures = \"/inputs\"\n\
                  prediction = \"/outputs/score\"\nmodel_version = \"/meta/version\"";
    let v2 = "topics = [\"inference-logs\"]\npair_timeout = \"1h\"\nmax_batch_rows = 1000\n\
              [kafka.formats]\n\"inference-logs\" = \"open-inference\"";
    let capture = "topics = [\"inference-logs\"]\nmax_batch_rows = 1000\n\
                   [kafka.formats]\n\"inference-logs\" = \"sagemaker-capture\"";
    let all = vec![
        pipeline(&dir.path().join("a"), ""),
        pipeline(&dir.path().join("b"), mapped),
        pipeline(&dir.path().join("c"), v2),
        pipeline(&dir.path().join("d"), capture),
    ];
    Pipelines { _dir: dir, all, inputs: 0 }
}

fuzz_target!(
    init: {
        *PIPELINES.lock().unwrap() = Some(pipelines());
    },
    |data: &[u8]| {
        let mut guard = PIPELINES.lock().unwrap();
        let p = guard.get_or_insert_with(pipelines);
        p.inputs += 1;
        let flush = p.inputs % 64 == 0;
        for pipeline in &mut p.all {
            let _ = pipeline.ingest(data, Some(1_793_491_200_000), Some("inference-logs"));
            if flush {
                // the halves waiting go alone, as at the end of a replay
                pipeline.close_all();
                let _ = pipeline.take_later();
            }
            for closed in pipeline.take_closed() {
                let report = report_window(closed);
                let _ = report.to_json_line();
            }
        }
    }
);
