//! Recovery codes: ten 80-bit codes shown once, stored as SHA-256 (their entropy makes a slow
//! hash unnecessary), each usable once. Typed codes are normalised: case, spaces and dashes
//! don't matter.

use latchkey_core::Rng;

pub const COUNT: usize = 10;
/// 32 symbols without the easily confused i, l and o: five bits each.
const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz023456789";

/// Ten new codes, formatted `xxxx-xxxx-xxxx-xxxx` (16 characters of a 32-symbol alphabet).
pub fn generate(rng: &dyn Rng) -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let mut bytes = [0u8; 16];
            rng.fill(&mut bytes);
            let chars: String = bytes
                .iter()
                .map(|b| ALPHABET[usize::from(b & 31)] as char)
                .collect();
            format!(
                "{}-{}-{}-{}",
                &chars[..4],
                &chars[4..8],
                &chars[8..12],
                &chars[12..]
            )
        })
        .collect()
}

/// What is stored for a code (and looked up for a typed one).
pub fn hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    latchkey_core::sha256_hex(format!("latchkey-recovery-v1:{normal}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::OsRng;

    #[test]
    fn codes_are_distinct_and_typing_variants_match() {
        let codes = generate(&OsRng);
        assert_eq!(codes.len(), COUNT);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        let c = &codes[0];
        assert_eq!(c.len(), 19);
        assert_eq!(hash(c), hash(&c.to_uppercase().replace('-', " ")));
        assert_ne!(hash(c), hash(&codes[1]));
    }
}
