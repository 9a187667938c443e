//! The provider's signing keys, from its JWKS document, by key id.

use std::collections::HashMap;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// A verification key and the one algorithm it verifies.
pub(crate) struct Key {
    pub decoding: DecodingKey,
    pub algorithm: Algorithm,
}

/// The keys a JWKS document publishes that ward can use, by `kid`.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, Key>,
    /// The key ids, sorted: what a change of keys compares.
    ids: Vec<String>,
}

/// The most keys ward keeps from one document; providers publish a handful.
const MAX_KEYS: usize = 100;

impl KeySet {
    /// The usable keys in a JWKS document (`{"keys": [...]}`). A key ward cannot use (no `kid`,
    /// for encryption, symmetric, another curve, malformed) is skipped, not fatal: one odd key
    /// must not take the others down.
    pub fn from_document(document: &serde_json::Value) -> Result<Self, String> {
        let entries = document
            .get("keys")
            .and_then(|keys| keys.as_array())
            .ok_or("the JWKS document has no `keys` array")?;
        let mut keys = HashMap::new();
        for entry in entries.iter().take(MAX_KEYS) {
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
                tracing::warn!("skipping a key of the identity provider's JWKS that does not parse");
                continue;
            };
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            match usable(&jwk) {
                Some(key) => {
                    keys.insert(kid, key);
                }
                None => tracing::debug!(%kid, "skipping a key ward does not verify tokens with"),
            }
        }
        let mut ids: Vec<String> = keys.keys().cloned().collect();
        ids.sort();
        Ok(Self { keys, ids })
    }

    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.get(kid)
    }

    pub fn ids(&self) -> &[String] {
        &self.ids
    }
}

/// The algorithm a public signing key is for, from its type and curve (and its `alg`, when it
/// names one, which must agree). Symmetric keys are never used: a JWKS is public.
fn usable(jwk: &Jwk) -> Option<Key> {
    if matches!(&jwk.common.public_key_use, Some(use_) if *use_ != PublicKeyUse::Signature) {
        return None;
    }
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => Algorithm::EdDSA,
        _ => return None,
    };
    let named = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::EdDSA) => Some(Algorithm::EdDSA),
        Some(_) => return None,
    };
    if named.is_some_and(|named| named != algorithm) {
        return None;
    }
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { decoding, algorithm })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_public_signing_keys_with_an_id_are_kept() {
        let document = json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AQAB", "y": "AQAB"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "kid": "ed-named-rs", "alg": "RS256", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "weird", "kid": "odd"},
            "not a key"
        ]});
        let keys = KeySet::from_document(&document).expect("a document");
        assert_eq!(keys.ids(), ["ed", "rsa"]);
        assert_eq!(keys.get("rsa").map(|k| k.algorithm), Some(Algorithm::RS256));
        assert_eq!(keys.get("ed").map(|k| k.algorithm), Some(Algorithm::EdDSA));
    }

    #[test]
    fn a_document_without_keys_is_an_error() {
        assert!(KeySet::from_document(&json!({"keys": "no"})).is_err());
        assert!(KeySet::from_document(&json!([])).is_err());
    }
}
