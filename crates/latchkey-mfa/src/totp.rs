//! TOTP (RFC 6238) as authenticator apps expect it: HMAC-SHA-1, 6 digits, 30-second steps,
//! codes accepted one step either side. Returns the matched time step, so the caller can
//! accept each step once per user (replay defence, SECURITY-TESTS T2).

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

pub const DIGITS: usize = 6;
pub const STEP_SECS: u64 = 30;
/// Steps accepted either side of now (RFC 6238 §5.2 recommends at most one).
pub const SKEW: u64 = 1;
/// 160-bit seeds, as RFC 4226 §4 recommends.
pub const SEED_BYTES: usize = 20;

fn totp(seed: &[u8], digits: usize) -> TOTP {
    TOTP {
        algorithm: Algorithm::SHA1,
        digits,
        skew: 0,
        step: STEP_SECS,
        secret: seed.to_vec(),
    }
}

/// The code for `unix_secs` (for tests and for showing nothing else: never sent anywhere).
pub fn code_at(seed: &[u8], unix_secs: u64, digits: usize) -> String {
    totp(seed, digits).generate(unix_secs)
}

/// The time step `code` belongs to, if it is valid now (±`SKEW` steps).
pub fn verify(seed: &[u8], code: &str, unix_secs: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = unix_secs / STEP_SECS;
    let t = totp(seed, DIGITS);
    // Every candidate is computed and compared, so timing does not tell which step matched.
    let mut found = None;
    for step in now.saturating_sub(SKEW)..=now + SKEW {
        let expected = t.generate(step * STEP_SECS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

/// RFC 4648 base32 without padding: how authenticator apps take a typed secret.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for b in bytes {
        buffer = (buffer << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes RFC 4648 base32 (no padding, any case); `None` for other characters.
pub fn from_base32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = (buffer << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            out.push((buffer >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// The `otpauth://` URI authenticator apps read from the QR code (Key Uri Format).
pub fn otpauth_uri(issuer: &str, account: &str, seed: &[u8]) -> String {
    let enc =
        |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32(seed),
        enc(issuer)
    )
}

/// The URI as a QR code in SVG, drawn here (no external service sees the secret).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(220, 220)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_vectors() {
        for (t, want) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(RFC_SEED, t, 8), want, "t={t}");
        }
    }

    #[test]
    fn one_step_either_side_and_no_more() {
        let now = 1_700_000_000;
        let step = now / STEP_SECS;
        for (offset, ok) in [(-60i64, false), (-30, true), (0, true), (30, true), (60, false)] {
            let code = code_at(RFC_SEED, (now as i64 + offset) as u64, DIGITS);
            let got = verify(RFC_SEED, &code, now);
            assert_eq!(got.is_some(), ok, "offset {offset}");
            if ok {
                assert_eq!(got, Some((step as i64 + offset / 30) as u64));
            }
        }
        assert!(verify(RFC_SEED, "12345", now).is_none());
        assert!(verify(RFC_SEED, "abcdef", now).is_none());
    }

    #[test]
    fn base32_and_uri() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(RFC_SEED), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(from_base32("gezdgnbvgy3tqojqgezdgnbvgy3tqojq").unwrap(), RFC_SEED);
        assert!(from_base32("not base32!").is_none());
        let uri = otpauth_uri("Acme Corp", "alice", RFC_SEED);
        assert!(uri.starts_with("otpauth://totp/Acme%20Corp:alice?secret=GEZDGNBVGY3TQOJQ"));
        assert!(qr_svg(&uri).unwrap().starts_with("<?xml"));
    }
}
