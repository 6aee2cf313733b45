//! Loom models of the protocols between recording threads and the evaluator, run on the real
//! code (its atomics and barriers come from `crate::sync`, which are loom's here):
//!
//! ```sh
//! VIGILO_LOOM=1 cargo test -p vigilo-collector --lib --features loom-models loom_
//! ```
//!
//! Each model lets loom try every interleaving, and every value a relaxed load may return, of a
//! record racing an arming; the property is that the crossing is never lost: either the record
//! saw the new bounds and fired, or the evaluator's re-read after its barrier saw the record.
//! With the barriers taken out (`sync::light_barrier` and `heavy_barrier` made no-ops), loom
//! finds the lost crossing in each.

use std::sync::Arc;

use loom::thread;

use super::Labels;
use super::any_series::AnySeries;
use super::gauge::GaugeCell;
use super::histogram::HistogramCells;
use super::registry::{Generation, SeriesReader};
use super::series::{Series, SeriesId};
use super::watch::{Hub, Watch, WatchBounds, WatchEvent};
use crate::sync;

fn hub() -> (Arc<Hub>, crossbeam_channel::Receiver<WatchEvent>) {
    let hub = Arc::new(Hub::default());
    let (tx, rx) = crossbeam_channel::bounded(8);
    hub.connect(tx);
    (hub, rx)
}

fn gauge(hub: &Arc<Hub>) -> Arc<Series<GaugeCell>> {
    Arc::new(Series {
        id: SeriesId(1),
        name: Arc::from("g"),
        labels: Labels::default(),
        cells: GaugeCell::new(Watch::new(Arc::clone(hub))),
    })
}

/// The evaluator's side, as `eval/arming.rs` does it: store, heavy barrier, re-read.
fn arm(reader: &SeriesReader, bounds: WatchBounds, histogram_count: u64) -> bool {
    reader.arm(bounds);
    sync::heavy_barrier();
    reader.missed(bounds, histogram_count)
}

#[test]
fn loom_a_gauge_crossing_racing_an_arming_is_never_lost() {
    loom::model(|| {
        let (hub, events) = hub();
        let series = gauge(&hub);
        let reader = SeriesReader(AnySeries::Gauge(Arc::clone(&series)));
        let recorder = thread::spawn(move || series.set_finite(100.0));
        let bounds = WatchBounds {
            upper: 90.0,
            lower: f64::NEG_INFINITY,
        };
        let missed = arm(&reader, bounds, 0);
        recorder.join().unwrap_or(());
        assert!(missed || events.try_recv().is_ok(), "the crossing was lost");
    });
}

#[test]
fn loom_a_record_ending_no_data_racing_an_arming_is_never_lost() {
    loom::model(|| {
        let (hub, events) = hub();
        let series = gauge(&hub);
        let reader = SeriesReader(AnySeries::Gauge(Arc::clone(&series)));
        // The sample that found the item silent consumed the freshness flag.
        reader.take_fresh();
        let recorder = thread::spawn(move || series.set_finite(1.0));
        let missed = arm(&reader, WatchBounds::ANY_RECORD, 0);
        recorder.join().unwrap_or(());
        assert!(missed || events.try_recv().is_ok(), "the record was lost");
    });
}

#[test]
fn loom_a_histogram_crossing_racing_an_arming_is_never_lost() {
    loom::model(|| {
        let (hub, events) = hub();
        let series = Arc::new(Series {
            id: SeriesId(2),
            name: Arc::from("h"),
            labels: Labels::default(),
            cells: HistogramCells::new(Watch::new(Arc::clone(&hub))),
        });
        let reader = SeriesReader(AnySeries::Histogram(Arc::clone(&series)));
        let recorder = thread::spawn(move || series.record_checked(2.5));
        let bounds = WatchBounds {
            upper: 1.0,
            lower: f64::NEG_INFINITY,
        };
        // Sampled before the record: count 0.
        let missed = arm(&reader, bounds, 0);
        recorder.join().unwrap_or(());
        assert!(missed || events.try_recv().is_ok(), "the crossing was lost");
    });
}

/// The registry adds a series, then moves its generation; the evaluator reads the generation,
/// then the series. Whoever sees the new number sees the series.
#[test]
fn loom_a_new_generation_comes_with_its_series() {
    loom::model(|| {
        let generation = Arc::new(Generation::new());
        // Stands for the series set: the weakest publication, a relaxed store.
        let added = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (generation, added) = (Arc::clone(&generation), Arc::clone(&added));
            thread::spawn(move || {
                added.store(true, std::sync::atomic::Ordering::Relaxed);
                generation.bump();
            })
        };
        if generation.get() == 1 {
            assert!(
                added.load(std::sync::atomic::Ordering::Relaxed),
                "cached a generation without its series"
            );
        }
        writer.join().unwrap_or(());
    });
}
