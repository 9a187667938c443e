//! Bearer JWTs from a real OpenID provider (panva's `oidc-provider`, started per test): the
//! tokens it issues verify; every classic attack on JWT validation is refused, each by its check.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use ward_identity::{IdentityError, OidcFile, OidcSettings, OidcVerifier};
use ward_testkit::TestProvider;

/// As ward.toml would set them; `min_refresh` "0s" (not a setting: at least 1s there) lets a
/// test show a refetch without waiting.
fn settings(issuer: &str, min_refresh: &str) -> OidcSettings {
    let text =
        format!("issuer = \"{issuer}\"\naudience = \"ward\"\nusername_claim = \"preferred_username\"\n");
    let mut settings = toml::from_str::<OidcFile>(&text).unwrap().resolve().unwrap();
    settings.jwks_min_refresh = match min_refresh {
        "0s" => Duration::ZERO,
        "30s" => Duration::from_secs(30),
        "1h" => Duration::from_secs(3600),
        other => panic!("{other}"),
    };
    settings
}

async fn ready(provider: &TestProvider, min_refresh: &str) -> Arc<OidcVerifier> {
    let verifier = OidcVerifier::new(settings(provider.issuer(), min_refresh)).unwrap();
    verifier.refresh().await.unwrap();
    verifier
}

fn now() -> Timestamp {
    Timestamp::now()
}

/// Claims as the provider would issue them for alice, now.
fn claims(issuer: &str) -> Value {
    let now = now().as_second();
    json!({"iss": issuer, "aud": "ward", "sub": "alice", "preferred_username": "alice",
           "groups": ["engineering"], "iat": now, "exp": now + 300})
}

fn parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

#[tokio::test]
async fn a_token_from_the_device_flow_names_its_person_groups_and_sign_in() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let verifier = ready(&provider, "30s").await;
    let token = provider.device_token("alice", None).await;
    let identity = verifier.verify(&token, now()).await.unwrap();
    assert_eq!(identity.username, "alice");
    assert_eq!(identity.subject, "alice");
    assert_eq!(identity.groups, ["engineering", "oncall"]);
    assert_eq!(identity.amr, ["pwd", "mfa"]);
    assert_eq!(identity.acr.as_deref(), Some("mfa"));
    assert!(identity.token_id.starts_with("oidc:"), "{}", identity.token_id);
    assert!(identity.expires_at > now());
    // The second time it is remembered, and still checked against the clock.
    assert_eq!(verifier.verify(&token, now()).await.unwrap(), identity);
    let later = identity.expires_at + SignedDuration::from_secs(61);
    assert!(matches!(verifier.verify(&token, later).await, Err(IdentityError::Expired(_))));
}

#[tokio::test]
async fn every_configured_algorithm_verifies() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let verifier = ready(&provider, "0s").await;
    for kid in ["rsa-1", "ec-1", "ed-1"] {
        provider.set_keys(&["rsa-1", "ec-1", "ed-1"], kid).await;
        let token = provider.device_token("bob", None).await;
        let header: Value = serde_json::from_slice(&B64.decode(&parts(&token)[0]).unwrap()).unwrap();
        assert_eq!(header["kid"], kid);
        assert_eq!(verifier.verify(&token, now()).await.unwrap().username, "bob", "{kid}");
    }
    // Configured for RS256 only, the others are refused by name.
    let text = format!("issuer = \"{}\"\naudience = \"ward\"\nalgorithms = [\"RS256\"]\n", provider.issuer());
    let rs_only = OidcVerifier::new(toml::from_str::<OidcFile>(&text).unwrap().resolve().unwrap()).unwrap();
    rs_only.refresh().await.unwrap();
    let ed = provider.device_token("bob", None).await;
    assert_eq!(rs_only.verify(&ed, now()).await, Err(IdentityError::AlgorithmNotAllowed("EdDSA".into())));
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_a_withdrawn_one_refused() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let verifier = ready(&provider, "0s").await;
    let old = provider.device_token("alice", None).await;
    verifier.verify(&old, now()).await.unwrap();

    // The provider starts signing with a new key: ward learns it on the first token that names it.
    provider.set_keys(&["rsa-1", "rsa-2"], "rsa-2").await;
    let new = provider.device_token("alice", None).await;
    let fetched = verifier.fetch_count();
    assert_eq!(verifier.verify(&new, now()).await.unwrap().username, "alice");
    assert_eq!(verifier.fetch_count(), fetched + 1);
    verifier.verify(&new, now()).await.unwrap();
    assert_eq!(verifier.fetch_count(), fetched + 1, "a known key is not fetched again");
    assert!(verifier.verify(&old, now()).await.is_ok(), "the old key is still published");

    // The old key is withdrawn: once ward has the new key set, tokens it signed are refused,
    // even one ward had verified before.
    provider.set_keys(&["rsa-2"], "rsa-2").await;
    verifier.refresh().await.unwrap();
    assert_eq!(verifier.verify(&old, now()).await, Err(IdentityError::UnknownKey("rsa-1".into())));
    assert_eq!(verifier.status().key_ids, ["rsa-2"]);
}

#[tokio::test]
async fn made_up_key_ids_cost_the_provider_one_fetch_per_period() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let verifier = ready(&provider, "1h").await;
    let fetched = verifier.fetch_count();
    let token = provider.device_token("alice", None).await;
    let [header, payload, signature] = <[String; 3]>::try_from(parts(&token)).unwrap();
    let mut header: Value = serde_json::from_slice(&B64.decode(header).unwrap()).unwrap();
    for n in 0..50 {
        header["kid"] = json!(format!("made-up-{n}"));
        let forged = format!("{}.{payload}.{signature}", B64.encode(header.to_string()));
        let refused = verifier.verify(&forged, now()).await;
        assert_eq!(refused, Err(IdentityError::UnknownKey(format!("made-up-{n}"))));
    }
    // Inside the period just after the first fetch: none at all.
    assert_eq!(verifier.fetch_count(), fetched);
}

#[tokio::test]
async fn tokens_for_another_audience_or_from_another_issuer_are_refused() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let verifier = ready(&provider, "30s").await;
    let other_api = provider.device_token("alice", Some("urn:other-api")).await;
    assert_eq!(verifier.verify(&other_api, now()).await, Err(IdentityError::WrongAudience));

    let mut elsewhere = claims("https://evil.example.com");
    let forged = provider.sign("rsa-1", json!({}), elsewhere.clone()).await;
    assert_eq!(verifier.verify(&forged, now()).await, Err(IdentityError::WrongIssuer));
    elsewhere["iss"] = json!(provider.issuer());
    elsewhere["aud"] = json!(["other", "ward"]);
    let listed = provider.sign("rsa-1", json!({}), elsewhere).await;
    assert!(verifier.verify(&listed, now()).await.is_ok(), "ward among several audiences");
}

#[tokio::test]
async fn a_tampered_token_fails_its_signature() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let verifier = ready(&provider, "30s").await;
    let token = provider.device_token("bob", None).await;
    let [header, payload, signature] = <[String; 3]>::try_from(parts(&token)).unwrap();
    let mut claims: Value = serde_json::from_slice(&B64.decode(&payload).unwrap()).unwrap();
    claims["preferred_username"] = json!("alice");
    let promoted = format!("{header}.{}.{signature}", B64.encode(claims.to_string()));
    assert_eq!(verifier.verify(&promoted, now()).await, Err(IdentityError::BadSignature));
    let mut flipped = B64.decode(&signature).unwrap();
    flipped[10] ^= 1;
    let bad_signature = format!("{header}.{payload}.{}", B64.encode(flipped));
    assert_eq!(verifier.verify(&bad_signature, now()).await, Err(IdentityError::BadSignature));
    // The signature of one key presented under another key's id.
    let ec = format!(
        "{}.{payload}.{signature}",
        B64.encode(json!({"alg": "ES256", "kid": "ec-1", "typ": "at+jwt"}).to_string())
    );
    assert_eq!(verifier.verify(&ec, now()).await, Err(IdentityError::BadSignature));
}

#[tokio::test]
async fn alg_none_and_hs256_keyed_with_the_public_key_are_refused() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let verifier = ready(&provider, "30s").await;
    let payload = B64.encode(claims(provider.issuer()).to_string());
    for alg in ["none", "None", "NONE"] {
        let header = B64.encode(json!({"alg": alg, "kid": "rsa-1"}).to_string());
        for unsigned in [format!("{header}.{payload}."), format!("{header}.{payload}.e30")] {
            assert!(
                matches!(verifier.verify(&unsigned, now()).await, Err(IdentityError::Malformed(_))),
                "{alg}"
            );
        }
    }
    // The classic key confusion: HMAC keyed with the RSA key the provider publishes.
    let jwks: Value = reqwest::get(provider.discovery().await["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == "rsa-1").unwrap();
    for secret in [public.to_string().into_bytes(), B64.decode(public["n"].as_str().unwrap()).unwrap()] {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        let key = jsonwebtoken::EncodingKey::from_secret(&secret).unwrap();
        let forged = jsonwebtoken::encode(&header, &claims(provider.issuer()), &key).unwrap();
        assert_eq!(
            verifier.verify(&forged, now()).await,
            Err(IdentityError::AlgorithmNotAllowed("HS256".into()))
        );
    }
}

#[tokio::test]
async fn keys_brought_by_the_token_are_never_used() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let verifier = ready(&provider, "30s").await;
    let attacker =
        json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    for (name, value) in [
        ("jwk", attacker),
        ("jku", json!("https://evil.example.com/jwks.json")),
        ("x5u", json!("https://evil.example.com/cert.pem")),
        ("x5c", json!(["MIIB"])),
    ] {
        let forged = provider.sign("rsa-1", json!({ name: value }), claims(provider.issuer())).await;
        assert_eq!(verifier.verify(&forged, now()).await, Err(IdentityError::HeaderRefused(name)));
    }
    let crit = provider.sign("rsa-1", json!({"crit": ["exp"]}), claims(provider.issuer())).await;
    assert!(verifier.verify(&crit, now()).await.is_err());
    let logout = provider.sign("rsa-1", json!({"typ": "logout+jwt"}), claims(provider.issuer())).await;
    assert_eq!(verifier.verify(&logout, now()).await, Err(IdentityError::WrongType("logout+jwt".into())));
    let no_kid = provider.sign("rsa-1", json!({"kid": null}), claims(provider.issuer())).await;
    assert_eq!(verifier.verify(&no_kid, now()).await, Err(IdentityError::NoKeyId));
}

#[tokio::test]
async fn times_are_checked_against_the_clock_given_with_leeway() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let verifier = ready(&provider, "30s").await;
    let issuer = provider.issuer();
    let at = now();
    let second = at.as_second();

    let mut expired = claims(issuer);
    expired["exp"] = json!(second - 61);
    let token = provider.sign("ec-1", json!({}), expired).await;
    assert!(matches!(verifier.verify(&token, at).await, Err(IdentityError::Expired(_))));
    let mut within_leeway = claims(issuer);
    within_leeway["exp"] = json!(second - 30);
    assert!(verifier.verify(&provider.sign("ec-1", json!({}), within_leeway).await, at).await.is_ok());

    let mut early = claims(issuer);
    early["nbf"] = json!(second + 120);
    let token = provider.sign("ec-1", json!({}), early).await;
    assert!(matches!(verifier.verify(&token, at).await, Err(IdentityError::NotYetValid(_))));
    assert!(verifier.verify(&token, at + SignedDuration::from_secs(90)).await.is_ok());

    let mut from_the_future = claims(issuer);
    from_the_future["iat"] = json!(second + 3600);
    let token = provider.sign("ec-1", json!({}), from_the_future).await;
    assert!(matches!(verifier.verify(&token, at).await, Err(IdentityError::IssuedInFuture(_))));
}

#[tokio::test]
async fn a_missing_or_wrongly_typed_claim_is_named() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let verifier = ready(&provider, "30s").await;
    let issuer = provider.issuer();
    for (claim, value, why) in [
        ("exp", Value::Null, "is missing"),
        ("sub", Value::Null, "is missing"),
        ("exp", json!("tomorrow"), "is missing"),
        ("groups", json!("engineering"), "is not a list of strings"),
        ("groups", json!([1, 2]), "is not a list of strings"),
        ("preferred_username", json!(42), "is not a string"),
        ("preferred_username", Value::Null, "is missing"),
        ("preferred_username", json!("ward"), "names one of ward's own actors"),
        ("preferred_username", json!("local:root"), "names one of ward's own actors"),
        ("preferred_username", json!("a\nb"), "is not a user name (1 to 128 letters, digits and -_.:@)"),
        (
            "preferred_username",
            json!("Alice Smith"),
            "is not a user name (1 to 128 letters, digits and -_.:@)",
        ),
        (
            "groups",
            json!(["Payments Leads"]),
            "holds `Payments Leads`, not a ward group name; map it in identity.oidc.group_map",
        ),
        ("amr", json!("pwd"), "is not a list of strings"),
    ] {
        let mut payload = claims(issuer);
        match value {
            Value::Null => {
                payload.as_object_mut().unwrap().remove(claim);
            }
            value => payload[claim] = value,
        }
        let token = provider.sign("rsa-1", json!({}), payload).await;
        match verifier.verify(&token, now()).await {
            Err(IdentityError::Claim { claim: named, why: said }) => {
                assert_eq!((named.as_str(), said.as_str()), (claim, why));
            }
            other => panic!("{claim}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_group_removed_at_the_provider_is_gone_from_the_next_token() {
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let verifier = ready(&provider, "30s").await;
    let before = provider.device_token("alice", None).await;
    assert!(verifier.verify(&before, now()).await.unwrap().groups.contains(&"oncall".to_owned()));
    provider.set_account("alice", &["engineering"], &["pwd"], "pwd").await;
    let after = provider.device_token("alice", None).await;
    let identity = verifier.verify(&after, now()).await.unwrap();
    assert_eq!(identity.groups, ["engineering"]);
    assert_eq!(identity.amr, ["pwd"]);
}

#[tokio::test]
async fn a_provider_down_at_start_is_waited_for_and_then_used() {
    let port = ward_testkit::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let verifier = OidcVerifier::new(settings(&issuer, "0s")).unwrap();
    let refresher = verifier.spawn_refresher();
    let token = format!(
        "{}.{}.c2ln",
        B64.encode(json!({"alg": "RS256", "kid": "rsa-1"}).to_string()),
        B64.encode(claims(&issuer).to_string())
    );
    match verifier.verify(&token, now()).await {
        Err(IdentityError::NotReady(why)) => assert!(why.contains("cannot reach"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(!verifier.status().ready);

    // It comes up: the retries in the background reach it, with no restart of ward.
    let Some(provider) = ward_testkit::oidc_provider_on(port) else { return };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !verifier.status().ready {
        assert!(std::time::Instant::now() < deadline, "never reached: {:?}", verifier.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let real = provider.device_token("alice", None).await;
    assert_eq!(verifier.verify(&real, now()).await.unwrap().username, "alice");
    refresher.abort();
}

/// A provider made up here, for what no real one would do: answers every request with
/// `respond(path)`, or never answers when it gives `None`.
async fn odd_provider(respond: fn(&str, &str) -> Option<String>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let base = issuer.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let base = base.clone();
            tokio::spawn(async move {
                let mut request = vec![0u8; 4096];
                let read = socket.read(&mut request).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&request[..read]).to_string();
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                match respond(&base, &path) {
                    Some(body) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = socket.write_all(head.as_bytes()).await;
                        let _ = socket.write_all(body.as_bytes()).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    issuer
}

fn discovery_then(base: &str, path: &str, jwks: Option<String>) -> Option<String> {
    if path == "/.well-known/openid-configuration" {
        Some(json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}).to_string())
    } else {
        jwks
    }
}

#[tokio::test]
async fn a_huge_or_slow_or_mismatched_provider_is_refused_in_bounded_time() {
    let huge = odd_provider(|base, path| {
        let padding = "x".repeat(ward_identity::MAX_DOCUMENT_BYTES);
        discovery_then(base, path, Some(json!({"keys": [], "padding": padding}).to_string()))
    })
    .await;
    let verifier = OidcVerifier::new(settings(&huge, "30s")).unwrap();
    let error = verifier.refresh().await.unwrap_err();
    assert!(matches!(error, ward_identity::FetchError::TooLarge { .. }), "{error}");

    let slow = odd_provider(|base, path| discovery_then(base, path, None)).await;
    let verifier = OidcVerifier::new(settings(&slow, "30s")).unwrap();
    let started = std::time::Instant::now();
    let error = verifier.refresh().await.unwrap_err();
    assert!(matches!(error, ward_identity::FetchError::Request { .. }), "{error}");
    assert!(started.elapsed() < ward_identity::FETCH_TIMEOUT + Duration::from_secs(2));

    // A document that names another issuer is another provider's.
    let impostor = odd_provider(|_, path| discovery_then("https://id.example.com", path, None)).await;
    let verifier = OidcVerifier::new(settings(&impostor, "30s")).unwrap();
    let error = verifier.refresh().await.unwrap_err();
    assert!(matches!(error, ward_identity::FetchError::IssuerMismatch { .. }), "{error}");
}

/// The `code` and `state` of the redirect back to the client.
fn code_and_state(redirect: &str) -> (String, String) {
    let query = redirect.split_once('?').expect("a query").1;
    let value = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .map(|v| v.replace("%2F", "/").replace("%3D", "="))
            .unwrap_or_else(|| panic!("no {name} in {redirect}"))
    };
    (value("code"), value("state"))
}

/// The browser sign-in against the real provider: the code comes back with the `state` ward
/// made; ward redeems it with its secret and the PKCE verifier; the ID token must carry this
/// sign-in's nonce; the access token says who signed in. A code works once.
#[tokio::test]
async fn a_browser_sign_in_through_the_code_flow() {
    use ward_identity::WebClient;
    let Some(provider) = ward_testkit::oidc_provider() else { return };
    let verifier = ready(&provider, "30s").await;
    let redirect = "http://127.0.0.1:8470/ui/callback".to_owned();
    let client = WebClient::new("ward-web".into(), "ward-web-test-secret".into(), redirect.clone());
    let now = Timestamp::now();

    let start = verifier.begin_sign_in(&client).unwrap();
    assert!(
        start.url.contains("code_challenge_method=S256") && start.url.contains("nonce="),
        "{}",
        start.url
    );
    let (code, state) = code_and_state(&provider.authorize(&start.url, "alice").await);
    assert_eq!(state, start.state);
    let signed =
        verifier.finish_sign_in(&client, &code, (&start.nonce, &start.code_verifier), now).await.unwrap();
    assert_eq!(signed.identity.username, "alice");
    assert!(signed.identity.groups.contains(&"engineering".to_owned()));
    let again = verifier.finish_sign_in(&client, &code, (&start.nonce, &start.code_verifier), now).await;
    assert!(matches!(again, Err(IdentityError::SignIn(_))), "a code is redeemed once: {again:?}");

    // Another sign-in's nonce: the ID token is not for it.
    let second = verifier.begin_sign_in(&client).unwrap();
    let (code, _) = code_and_state(&provider.authorize(&second.url, "bob").await);
    let replayed = verifier.finish_sign_in(&client, &code, (&start.nonce, &second.code_verifier), now).await;
    assert!(matches!(&replayed, Err(IdentityError::Claim { claim, .. }) if claim == "nonce"), "{replayed:?}");

    // A code without its PKCE verifier, or redeemed without the client's secret, gets nothing.
    let third = verifier.begin_sign_in(&client).unwrap();
    let (code, _) = code_and_state(&provider.authorize(&third.url, "bob").await);
    let stolen = verifier.finish_sign_in(&client, &code, (&third.nonce, &second.code_verifier), now).await;
    assert!(matches!(stolen, Err(IdentityError::SignIn(_))), "{stolen:?}");
    let fourth = verifier.begin_sign_in(&client).unwrap();
    let (code, _) = code_and_state(&provider.authorize(&fourth.url, "bob").await);
    let impostor = WebClient::new("ward-web".into(), "not-the-secret".into(), redirect);
    let refused =
        verifier.finish_sign_in(&impostor, &code, (&fourth.nonce, &fourth.code_verifier), now).await;
    assert!(matches!(refused, Err(IdentityError::SignIn(_))), "{refused:?}");
}
