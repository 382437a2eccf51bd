//! The hot path (decode → route → accumulate) allocates nothing per event once warm: a
//! counting allocator watches 20,000 events into an open window.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use driftd::config::Settings;
use driftd::stream::Engine;

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn ingest_does_not_allocate_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[models]]\nname = \"m\"\nreference = \"{}\"\nfeatures = [\"x\", \"k\", \"s\"]\nwindow = {{ size = \"1d\" }}\n",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data/size_1001_ref.csv").display()
        ),
    )
    .unwrap();
    let settings = Settings::load(&cfg).unwrap();
    let mut engine = Engine::from_settings(&settings).unwrap();
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
        engine.ingest(m.as_bytes(), None, None).unwrap();
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for m in &messages[10_000..] {
        engine.ingest(m.as_bytes(), None, None).unwrap();
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    // Column growth doubles a vector now and then; nothing else may allocate.
    assert!(allocs < 50, "{allocs} allocations for 20,000 events");
    assert_eq!(engine.models[0].open_events(), 30_000);
}
