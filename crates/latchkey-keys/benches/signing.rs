//! Signing through the key ring next to raw aws-lc-rs, per algorithm, in one run.
//! `raw`: aws-lc-rs signs a prepared JWS signing input with an already parsed key.
//! `ring`: `KeyRing::sign` builds the JWT from claims and signs with the cached active key.

#![allow(clippy::unwrap_used, missing_docs)] // bench code

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use criterion::{Criterion, criterion_group, criterion_main};
use latchkey_core::{OsRng, SystemClock, TenantPolicy};
use latchkey_keys::{Alg, KeyRing, MasterKey};
use latchkey_store::{DatabaseUrl, Db, NewTenant, PoolOptions, TenantRepo};
use serde_json::json;
use std::hint::black_box;
use std::sync::Arc;

fn signing(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("bench.db").display())).unwrap();
    let db = Db::open(
        &url,
        &PoolOptions::for_url(&url),
        Arc::new(SystemClock),
        Arc::new(OsRng),
    )
    .unwrap();
    db.migrate().unwrap();
    let t = db
        .create_tenant(
            "bench",
            &NewTenant {
                slug: "bench".into(),
                display_name: None,
                policy: TenantPolicy::default(),
            },
        )
        .unwrap()
        .id;
    let ring = KeyRing::open(db, MasterKey::generate().unwrap(), Arc::new(SystemClock)).unwrap();
    ring.ensure_tenant(&t, "bench").unwrap();
    let ed = ring.rotate(&t, Alg::EdDSA, "bench").unwrap();
    ring.activate(&t, &ed, "bench").unwrap();
    let claims = json!({
        "iss": "https://sso.example.com/t/bench", "sub": "248289761001", "aud": "portal",
        "iat": 1_800_000_000, "exp": 1_800_000_600, "scope": "openid profile email", "client_id": "portal",
        "jti": "3f1c2e4a-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
    });
    // The same signing input the ring produces, for the raw side.
    let input = {
        let token = ring.sign(&t, Alg::ES256, "at+jwt", &claims).unwrap();
        let (h, rest) = token.split_once('.').unwrap();
        format!("{h}.{}", rest.split('.').next().unwrap())
    };
    let system_random = SystemRandom::new();

    let mut g = c.benchmark_group("sign");
    let es = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    g.bench_function("ES256/raw", |b| {
        b.iter(|| black_box(es.sign(&system_random, input.as_bytes()).unwrap()));
    });
    g.bench_function("ES256/ring", |b| {
        b.iter(|| black_box(ring.sign(&t, Alg::ES256, "at+jwt", &claims).unwrap()));
    });
    let ed_raw = Ed25519KeyPair::generate().unwrap();
    g.bench_function("EdDSA/raw", |b| {
        b.iter(|| black_box(ed_raw.sign(input.as_bytes())));
    });
    g.bench_function("EdDSA/ring", |b| {
        b.iter(|| black_box(ring.sign(&t, Alg::EdDSA, "at+jwt", &claims).unwrap()));
    });
    let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let mut sig = vec![0u8; rsa.public_modulus_len()];
    g.bench_function("RS256/raw", |b| {
        b.iter(|| {
            rsa.sign(
                &signature::RSA_PKCS1_SHA256,
                &system_random,
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
            black_box(&sig);
        });
    });
    g.bench_function("RS256/ring", |b| {
        b.iter(|| black_box(ring.sign(&t, Alg::RS256, "at+jwt", &claims).unwrap()));
    });
    let _ = es.public_key();
    g.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
