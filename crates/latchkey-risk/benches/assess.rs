//! What risk scoring adds to a sign-in with a full history loaded: the stored JSON parsed,
//! signals derived, scored, decided, the attempt recorded and the history written back.
//! (Sealing and the database round trip are the store's, measured with the sign-in bench.)

use criterion::{Criterion, criterion_group, criterion_main};
use latchkey_risk::{Attempt, Bands, History, Signals, Weights, assess, decide};
use std::hint::black_box;

fn full_history() -> String {
    let mut h = History::default();
    for i in 0..200_i64 {
        h.record(&Attempt {
            at: i * 3_600_000,
            device: Some(format!("{:064x}", i % 12)),
            network: format!("203.0.{}.0/24", i % 25),
            asn: Some(64_500 + u32::try_from(i % 12).unwrap_or(0)),
            location: Some((48.0 + (i % 5) as f64, 2.0)),
        });
    }
    serde_json::to_string(&h).expect("serializable")
}

fn scoring(c: &mut Criterion) {
    let stored = full_history();
    let (weights, bands) = (Weights::default(), Bands::default());
    let attempt = Attempt {
        at: 201 * 3_600_000,
        device: Some(format!("{:064x}", 99)),
        network: "198.51.100.0/24".into(),
        asn: Some(64_999),
        location: Some((-33.86, 151.2)),
    };
    c.bench_function("risk/score_with_history", |b| {
        b.iter(|| {
            let mut history: History = serde_json::from_str(black_box(&stored)).expect("parses");
            let s = Signals {
                recent_failures: 2,
                accounts_from_network: 1,
                ..history.signals(black_box(&attempt))
            };
            let a = assess(&s, &weights);
            let d = decide(a.score, &bands);
            history.record(&attempt);
            black_box((d, serde_json::to_string(&history).expect("serializable")))
        });
    });
}

/// What the server adds around scoring: opening the sealed history and sealing it again
/// (AES-256-GCM, as the key ring does; the database round trip is not included).
fn sealing(c: &mut Criterion) {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("key"));
    let stored = full_history();
    c.bench_function("risk/open_and_seal_history", |b| {
        b.iter(|| {
            let mut buf = stored.clone().into_bytes();
            let nonce = || Nonce::assume_unique_for_key([1u8; 12]);
            key.seal_in_place_append_tag(nonce(), Aad::from(b"t|risk_history|history_sealed|u"), &mut buf)
                .expect("seals");
            let plain = key
                .open_in_place(nonce(), Aad::from(b"t|risk_history|history_sealed|u"), &mut buf)
                .expect("opens");
            black_box(plain.len())
        });
    });
}

criterion_group!(benches, scoring, sealing);
criterion_main!(benches);
