//! Signing as the Standard Webhooks specification says (<https://www.standardwebhooks.com/>):
//! `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64>`, the
//! HMAC-SHA256 with the secret's bytes over `{id}.{timestamp}.{body}`. A receiver verifies with
//! any of the specification's libraries. Used by the notification sinks (`ward-notify`) and
//! the `http` debug-level driver's signed webhook (`ward-provision`).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// `v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Whether `header` (space-separated `v1,<base64>` entries, as the specification allows several
/// during a secret's rotation) holds a valid signature of the message; compared in constant
/// time. For receivers (ward's tests and benchmark are one).
pub fn verify(secret: &[u8], id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    header.split(' ').filter_map(|entry| entry.strip_prefix("v1,")).any(|encoded| {
        let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            return false;
        };
        let mut mac = mac(secret);
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&signature).is_ok()
    })
}

/// The bytes of a Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 random bytes
/// (the specification's range), as the reference libraries read it (the prefix may be left out).
pub fn secret_bytes(text: &str) -> Result<Vec<u8>, String> {
    let encoded = text.strip_prefix("whsec_").unwrap_or(text);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "not a Standard Webhooks secret (`whsec_` and base64)".to_owned())?;
    if !(24..=64).contains(&bytes.len()) {
        return Err(format!("the secret is {} bytes; use 24 to 64 random bytes", bytes.len()));
    }
    Ok(bytes)
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Vec<u8> {
        secret_bytes(text).unwrap()
    }

    /// The specification's published vectors, from its reference libraries
    /// (github.com/standard-webhooks/standard-webhooks: `libraries/php/tests/WebhookTest.php`,
    /// `testSignFunctionWorks`, and `libraries/rust/src/lib.rs`, `test_sign`). Only these prove
    /// that a receiver's library accepts what ward sends: a round trip through ward's own
    /// verifier would pass with the wrong delimiter, alphabet or key decoding too.
    #[test]
    fn signatures_match_the_specifications_test_vectors() {
        let php = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(&php, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(&php, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, &signature));

        let rust = secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            sign(&rust, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn verification_refuses_what_was_not_signed() {
        let key = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let good = sign(&key, "evt_1", 100, b"{}");
        assert!(verify(&key, "evt_1", 100, b"{}", &format!("v1,bm9wZQ== {good}")), "one of several");
        assert!(!verify(&key, "evt_1", 101, b"{}", &good), "another timestamp");
        assert!(!verify(&key, "evt_2", 100, b"{}", &good), "another id");
        assert!(!verify(&key, "evt_1", 100, b"{ }", &good), "another body");
        assert!(!verify(&key, "evt_1", 100, b"{}", good.trim_start_matches("v1,")), "no version");
        assert!(!verify(&secret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"), "evt_1", 100, b"{}", &good));
    }
}
