//! The ceiling of the side-by-side benchmark: bare actix-web 4 + aws-lc-rs, nothing else.
//!
//! - `POST /token`: one fresh ES256 JWT (RFC 9068 shape: iss, sub, aud, exp, iat, jti,
//!   client_id, scope) signed per request, answered as an OAuth token response. No client
//!   authentication, no storage, no audit: the least any token endpoint on this stack must do.
//! - `GET /.well-known/openid-configuration` and `GET /jwks`: static bytes (the files named by
//!   `CEILING_DISCOVERY_FILE` and `CEILING_JWKS_FILE`, so they are the same size as Latchkey's).
//!
//! Settings: `CEILING_LISTEN` (default 127.0.0.1:18090), `CEILING_WORKERS` (default 2).

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{App, HttpResponse, HttpServer, web};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use std::time::{SystemTime, UNIX_EPOCH};

struct Ceiling {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    header: String,
    discovery: Vec<u8>,
    jwks: Vec<u8>,
}

async fn token(state: web::Data<Ceiling>, _body: web::Bytes) -> HttpResponse {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut jti = [0u8; 16];
    if state.rng.fill(&mut jti).is_err() {
        return HttpResponse::InternalServerError().finish();
    }
    let claims = format!(
        r#"{{"iss":"http://127.0.0.1/t/bench","sub":"ceiling-client","aud":"ceiling-client","exp":{},"iat":{now},"jti":"{}","client_id":"ceiling-client","scope":"reports.read"}}"#,
        now + 600,
        B64.encode(jti)
    );
    let mut jwt = String::with_capacity(512);
    jwt.push_str(&state.header);
    jwt.push('.');
    B64.encode_string(claims.as_bytes(), &mut jwt);
    let Ok(sig) = state.key.sign(&state.rng, jwt.as_bytes()) else {
        return HttpResponse::InternalServerError().finish();
    };
    jwt.push('.');
    B64.encode_string(sig.as_ref(), &mut jwt);
    let body = format!(
        r#"{{"access_token":"{jwt}","token_type":"Bearer","expires_in":600,"scope":"reports.read"}}"#
    );
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body)
}

async fn discovery(state: web::Data<Ceiling>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(state.discovery.clone())
}

async fn jwks(state: web::Data<Ceiling>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/jwk-set+json"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(state.jwks.clone())
}

fn file_or(var: &str, default: &str) -> Vec<u8> {
    std::env::var(var)
        .ok()
        .and_then(|path| std::fs::read(path).ok())
        .unwrap_or_else(|| default.as_bytes().to_vec())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::var("CEILING_LISTEN").unwrap_or_else(|_| "127.0.0.1:18090".into());
    let workers = std::env::var("CEILING_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| std::io::Error::other("key generation failed"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| std::io::Error::other("key parsing failed"))?;
    let state = web::Data::new(Ceiling {
        key,
        rng,
        header: B64.encode(r#"{"alg":"ES256","typ":"at+jwt","kid":"ceiling"}"#),
        discovery: file_or("CEILING_DISCOVERY_FILE", r#"{"issuer":"http://127.0.0.1/t/bench"}"#),
        jwks: file_or("CEILING_JWKS_FILE", r#"{"keys":[]}"#),
    });
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/token", web::post().to(token))
            .route("/.well-known/openid-configuration", web::get().to(discovery))
            .route("/jwks", web::get().to(jwks))
            .route("/healthz", web::get().to(HttpResponse::Ok))
    })
    .workers(workers)
    .bind(listen)?
    .run()
    .await
}
