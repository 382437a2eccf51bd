//! The hot path (decode → route → accumulate) allocates nothing per event once warm: a
//! counting allocator watches 20,000 events into an open window. It counts only on the
//! thread that asked, so the other tests of this binary, running beside it, do not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use driftd::config::Settings;
use driftd::pipeline::Pipeline;

struct Counting;

thread_local! {
    /// Allocations on this thread while counting; `None` when not counting.
    static ALLOCS: Cell<Option<usize>> = const { Cell::new(None) };
}

fn note_alloc() {
    // `try_with`: the thread-local may already be gone while a thread exits
    let _ = ALLOCS.try_with(|a| {
        if let Some(n) = a.get() {
            a.set(Some(n + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note_alloc();
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note_alloc();
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Runs `f` and returns how many allocations it made on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    ALLOCS.with(|a| a.set(Some(0)));
    f();
    ALLOCS.with(|a| a.replace(None)).unwrap_or(0)
}

#[test]
fn ingest_does_not_allocate_per_event() {
    let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data/size_1001_ref.csv");
    let settings = Settings::from_toml(&format!(
        "[[models]]\nname = \"m\"\nreference = \"{}\"\nfeatures = [\"x\", \"k\", \"s\"]\nwindow = {{ size = \"1d\" }}\n",
        reference.display()
    ))
    .unwrap();
    let refs = driftd::reference::resolve_blocking(&settings).unwrap();
    let mut pipeline = Pipeline::new(&settings, refs).unwrap();
    let messages: Vec<String> = (0..30_000)
        .map(|i| {
            format!(
                "{{\"model\": \"m\", \"request_id\": \"r-{i}\", \"timestamp\": {}, \"features\": {{\"x\": {}, \"k\": {}, \"s\": \"{}\"}}, \"prediction\": 0.5}}",
                1_795_910_400_000i64 + i,
                (i % 97) as f64 / 7.0,
                i % 30,
                ["a", "b", "c"][i as usize % 3]
            )
        })
        .collect();
    for m in &messages[..10_000] {
        pipeline.ingest(m.as_bytes(), None, None).unwrap();
    }
    let allocs = allocations(|| {
        for m in &messages[10_000..] {
            pipeline.ingest(m.as_bytes(), None, None).unwrap();
        }
    });
    // Column growth doubles a vector now and then; nothing else may allocate.
    assert!(allocs < 50, "{allocs} allocations for 20,000 events");
    assert_eq!(pipeline.models()[0].tracks[0].windows.open_events(), 30_000);
}

/// A model server's batches (Open Inference Protocol, 20 rows a request, its response
/// joined to it) cost a few allocations a message once warm, none a row: their buffers
/// go back to the next messages.
#[test]
fn open_inference_batches_allocate_per_message_not_per_row() {
    let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data/size_1001_ref.csv");
    let settings = Settings::from_toml(&format!(
        "[kafka]\ntopics = [\"v2\"]\n[kafka.formats]\n\"v2\" = \"open-inference\"\n\
         [[models]]\nname = \"m\"\nreference = \"{}\"\nfeatures = [\"x\", \"k\", \"s\"]\nwindow = {{ size = \"1d\" }}\n",
        reference.display()
    ))
    .unwrap();
    let refs = driftd::reference::resolve_blocking(&settings).unwrap();
    let mut pipeline = Pipeline::new(&settings, refs).unwrap();
    let rows = 20;
    let messages: Vec<String> = (0..3_000)
        .flat_map(|b| {
            let x: Vec<String> = (0..rows).map(|r| format!("{}", ((b * rows + r) % 97) as f64 / 7.0)).collect();
            let k: Vec<String> = (0..rows).map(|r| format!("{}", (b * rows + r) % 30)).collect();
            let s: Vec<String> = (0..rows).map(|r| format!("\"{}\"", ["a", "b", "c"][r % 3])).collect();
            let p: Vec<&str> = (0..rows).map(|_| "0.5").collect();
            let ts = 1_795_910_400_000i64 + b as i64;
            let request = format!(
                "{{\"id\": \"r-{b}\", \"model_name\": \"m\", \"parameters\": {{\"timestamp\": {ts}}}, \"inputs\": [\
                 {{\"name\": \"x\", \"shape\": [{rows}, 1], \"datatype\": \"FP64\", \"data\": [{}]}}, \
                 {{\"name\": \"k\", \"shape\": [{rows}, 1], \"datatype\": \"INT64\", \"data\": [{}]}}, \
                 {{\"name\": \"s\", \"shape\": [{rows}, 1], \"datatype\": \"BYTES\", \"data\": [{}]}}]}}",
                x.join(", "),
                k.join(", "),
                s.join(", ")
            );
            let response = format!(
                "{{\"id\": \"r-{b}\", \"model_name\": \"m\", \"outputs\": [\
                 {{\"name\": \"predict\", \"shape\": [{rows}], \"datatype\": \"FP64\", \"data\": [{}]}}]}}",
                p.join(", ")
            );
            [request, response]
        })
        .collect();
    for m in &messages[..2_000] {
        pipeline.ingest(m.as_bytes(), None, Some("v2")).unwrap();
    }
    let counted = &messages[2_000..];
    let allocs = allocations(|| {
        for m in counted {
            pipeline.ingest(m.as_bytes(), None, Some("v2")).unwrap();
        }
    });
    // the batch's box, the waiting half's key in the pairer's order, the row plan; and
    // column growth now and then
    let per_message = allocs as f64 / counted.len() as f64;
    assert!(per_message <= 4.0, "{allocs} allocations for {} messages of {rows} rows", counted.len());
    assert_eq!(pipeline.models()[0].tracks[0].windows.open_events(), 3_000 * rows as u64);
}

#[test]
fn the_counter_counts() {
    let n = allocations(|| {
        let v: Vec<Box<u64>> = (0..10).map(Box::new).collect();
        std::hint::black_box(v);
    });
    assert!(n >= 11, "{n}");
}
