//! API key management and JWT authentication over HTTP: keys with roles, expiry and
//! revocation; HS256, RS256 and ES256 tokens with their claims checked; role grants stored in
//! the database taking effect without a restart.

mod test_support;

use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use memoryc_platform::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use test_support::{Backends, Caller, TestPlatform, hs256_token, platform_admin_token};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rsa_key(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture(name)).expect("RSA key")
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(&fixture("ec-private.pem")).expect("EC key")
}

/// The public JWKS of the test keys, each under a `kid`.
fn jwks() -> JwkSet {
    let mut keys = Vec::new();
    for (kid, key, alg) in [
        ("rsa-1", rsa_key("rsa-private.pem"), Algorithm::RS256),
        ("ec-1", ec_key(), Algorithm::ES256),
    ] {
        let mut jwk = Jwk::from_encoding_key(&key, alg).expect("public JWK");
        jwk.common.key_id = Some(kid.to_string());
        keys.push(jwk);
    }
    JwkSet { keys }
}

fn signed(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, mut claims: Value) -> String {
    if claims.get("exp").is_none() {
        claims["exp"] = json!(chrono::Utc::now().timestamp() + 600);
    }
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, &claims, key).expect("signs")
}

async fn status_for(
    platform: &TestPlatform,
    caller: &Caller,
    method: Method,
    path: &str,
) -> StatusCode {
    platform.call_as(caller, method, path, None).await.0
}

#[tokio::test]
async fn tenant_admins_issue_list_and_revoke_keys_with_roles_and_expiry() {
    let platform = TestPlatform::start(Backends::Embedded).await;
    let tenant = platform.create_tenant("Shared").await;
    let other = platform.create_tenant("Shared").await;
    let admin = tenant.api_key.as_str();

    let reader = platform.issue_key(admin, "reader").await;
    assert!(
        reader
            .api_key
            .starts_with(&format!("mck_{}_", reader.prefix))
    );
    let (status, _) = platform
        .call(Method::GET, "/api/v1/memories", Some(&reader.api_key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = platform
        .call(
            Method::POST,
            "/api/v1/memories",
            Some(&reader.api_key),
            Some(json!({"content": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "readers do not write");

    // The list shows prefixes and states, never a secret or a hash.
    let (status, list) = platform
        .call(Method::GET, "/api/v1/keys", Some(admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = list.to_string();
    assert!(!text.contains(&reader.api_key), "plaintext listed");
    assert!(!text.contains("hash"), "hash listed: {text}");
    let keys = list["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "{list}");
    let listed = keys
        .iter()
        .find(|k| k["key_id"] == reader.key_id.as_str())
        .expect("reader key listed");
    assert_eq!(listed["role"], "reader");
    assert_eq!(listed["status"], "active");
    assert_eq!(listed["prefix"], reader.prefix.as_str());

    // Revocation applies to the very next request.
    let path = format!("/api/v1/keys/{}", reader.key_id);
    let (status, _) = platform
        .call(Method::DELETE, &path, Some(admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = platform
        .call(Method::GET, "/api/v1/memories", Some(&reader.api_key), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, list) = platform
        .call(Method::GET, "/api/v1/keys", Some(admin), None)
        .await;
    assert!(
        list["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k["status"] == "revoked")
    );
    let (status, _) = platform
        .call(Method::DELETE, &path, Some(admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "revoking twice");

    // Another tenant's admin can neither see nor revoke this tenant's keys.
    let service = platform.issue_key(admin, "service").await;
    let theirs = format!("/api/v1/keys/{}", service.key_id);
    let (status, _) = platform
        .call(Method::DELETE, &theirs, Some(&other.api_key), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = platform
        .call(Method::GET, "/api/v1/keys", Some(&other.api_key), None)
        .await;
    assert!(!list.to_string().contains(&service.key_id));
    let (status, _) = platform
        .call(
            Method::GET,
            "/api/v1/memories",
            Some(&service.api_key),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the key survived the other tenant's attempt"
    );

    // Expiry: a key that expires shortly works until then and is refused afterwards.
    let expires_at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let (status, short) = platform
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(admin),
            Some(json!({"name": "short-lived", "role": "service", "expires_at": expires_at})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{short}");
    let short_key = short["api_key"].as_str().expect("key").to_string();
    let (status, _) = platform
        .call(Method::GET, "/api/v1/memories", Some(&short_key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (status, _) = platform
        .call(Method::GET, "/api/v1/memories", Some(&short_key), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired key");

    // Refused requests.
    for body in [
        json!({"name": "x", "role": "platform-admin"}),
        json!({"name": "x", "role": "emperor"}),
        json!({"name": "  ", "role": "reader"}),
        json!({"name": "x", "role": "reader", "expires_at": "2001-01-01T00:00:00Z"}),
    ] {
        let (status, error) = platform
            .call(
                Method::POST,
                "/api/v1/keys",
                Some(admin),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} -> {error}"
        );
    }
    let (status, _) = platform
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(admin),
            Some(json!({"name": "x", "role": "reader", "user_id": other.user_id})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a user of another tenant");
    // Only tenant admins manage keys.
    let (status, _) = platform
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(&service.api_key),
            Some(json!({"name": "x", "role": "tenant-admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    platform.shutdown().await;
}

#[tokio::test]
async fn hs256_tokens_are_checked_claim_by_claim() {
    let platform = TestPlatform::start(Backends::Embedded).await;
    let tenant = platform.create_tenant("Shared").await;
    let now = chrono::Utc::now().timestamp();
    let good = hs256_token(json!({"sub": "agent-7", "tenant": tenant.name, "roles": ["service"]}));
    let (status, created) = platform
        .call_as(
            &Caller::Bearer(good.clone()),
            Method::POST,
            "/api/v1/memories",
            Some(json!({"content": "Written by a JWT agent.", "category": "WORKFLOW"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    // The subject is a stable user of the tenant.
    let (_, again) = platform
        .call_as(
            &Caller::Bearer(good.clone()),
            Method::POST,
            "/api/v1/memories",
            Some(json!({"content": "Second one.", "category": "WORKFLOW"})),
        )
        .await;
    assert_eq!(created["user_id"], again["user_id"]);

    let wrong_secret = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "a", "tenant": tenant.name, "roles": ["service"], "exp": now + 600}),
        &EncodingKey::from_secret(b"some-other-secret-of-at-least-32-bytes!!"),
    )
    .expect("signs");
    let refused = [
        (
            "expired beyond the leeway",
            hs256_token(
                json!({"sub": "a", "tenant": tenant.name, "roles": ["service"], "exp": now - 120}),
            ),
        ),
        (
            "not yet valid",
            hs256_token(
                json!({"sub": "a", "tenant": tenant.name, "roles": ["service"], "nbf": now + 600}),
            ),
        ),
        (
            "unknown tenant",
            hs256_token(json!({"sub": "a", "tenant": "no-such-tenant", "roles": ["service"]})),
        ),
        (
            "no tenant",
            hs256_token(json!({"sub": "a", "roles": ["service"]})),
        ),
        (
            "no subject",
            hs256_token(json!({"tenant": tenant.name, "roles": ["service"]})),
        ),
        (
            "an audience nobody configured",
            hs256_token(
                json!({"sub": "a", "tenant": tenant.name, "roles": ["service"], "aud": "someone-else"}),
            ),
        ),
        ("wrong secret", wrong_secret),
        ("garbage", "not.a.jwt".to_string()),
        ("unsigned", unsigned_token(&tenant.name)),
    ];
    for (why, token) in refused {
        let status = status_for(
            &platform,
            &Caller::Bearer(token),
            Method::GET,
            "/api/v1/memories",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}");
    }
    // Within the leeway, a just-expired token still works (clock skew).
    let skewed = hs256_token(
        json!({"sub": "a", "tenant": tenant.name, "roles": ["service"], "exp": now - 5}),
    );
    assert_eq!(
        status_for(
            &platform,
            &Caller::Bearer(skewed),
            Method::GET,
            "/api/v1/memories"
        )
        .await,
        StatusCode::OK
    );
    // Roles that pose as subjects are dropped: this token holds no usable role.
    let forged = hs256_token(
        json!({"sub": "a", "tenant": tenant.name, "roles": [format!("user:{}", tenant.user_id)]}),
    );
    assert_eq!(
        status_for(
            &platform,
            &Caller::Bearer(forged),
            Method::GET,
            "/api/v1/memories"
        )
        .await,
        StatusCode::FORBIDDEN
    );
    platform.shutdown().await;
}

fn unsigned_token(tenant: &str) -> String {
    use base64_url as b64;
    let header = b64::encode(r#"{"alg":"none","typ":"JWT"}"#);
    let exp = chrono::Utc::now().timestamp() + 600;
    let claims = b64::encode(&format!(
        r#"{{"sub":"a","tenant":"{tenant}","roles":["tenant-admin"],"exp":{exp}}}"#
    ));
    format!("{header}.{claims}.")
}

/// Minimal unpadded base64url, enough to forge an unsigned token.
mod base64_url {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    pub fn encode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
            let chars = chunk.len() + 1;
            for i in 0..chars {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

async fn rs256_and_es256_tokens_verify_against_a_jwks(from_url: bool) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_support::test_config(Backends::Embedded, data_dir.path().to_path_buf());
    let jwks_json = serde_json::to_string(&jwks()).expect("JWKS");
    let _server = if from_url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let body = jwks_json.clone();
                async move { ([("content-type", "application/json")], body) }
            }),
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        config.security.jwt_jwks_url = Some(format!("http://{address}/.well-known/jwks.json"));
        Some(server)
    } else {
        let path = data_dir.path().join("jwks.json");
        std::fs::write(&path, jwks_json).expect("write JWKS");
        config.security.jwt_jwks_file = Some(path);
        None
    };
    config.security.jwt_issuer = Some("https://issuer.test".to_string());
    config.security.jwt_audience = Some("memoryc".to_string());
    let platform = TestPlatform::start_with(config, data_dir).await;
    let tenant = platform.create_tenant("Shared").await;
    let claims = |extra: Value| {
        let mut claims = json!({"sub": "person-1", "tenant": tenant.name, "roles": ["reader"],
            "iss": "https://issuer.test", "aud": "memoryc"});
        if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            claims.extend(extra.clone());
        }
        claims
    };
    let rsa = rsa_key("rsa-private.pem");
    let ec = ec_key();
    let accepted = [
        (
            "RS256 by kid",
            signed(Algorithm::RS256, Some("rsa-1"), &rsa, claims(json!({}))),
        ),
        (
            "ES256 by kid",
            signed(Algorithm::ES256, Some("ec-1"), &ec, claims(json!({}))),
        ),
        (
            "RS256, the only RSA key",
            signed(Algorithm::RS256, None, &rsa, claims(json!({}))),
        ),
    ];
    for (why, token) in accepted {
        assert_eq!(
            status_for(
                &platform,
                &Caller::Bearer(token),
                Method::GET,
                "/api/v1/memories"
            )
            .await,
            StatusCode::OK,
            "{why}"
        );
    }
    let refused = [
        (
            "a key not in the JWKS",
            signed(
                Algorithm::RS256,
                Some("rsa-1"),
                &rsa_key("rsa-other-private.pem"),
                claims(json!({})),
            ),
        ),
        (
            "the wrong kid",
            signed(Algorithm::RS256, Some("ec-1"), &rsa, claims(json!({}))),
        ),
        (
            "wrong issuer",
            signed(
                Algorithm::RS256,
                Some("rsa-1"),
                &rsa,
                claims(json!({"iss": "https://evil.test"})),
            ),
        ),
        (
            "wrong audience",
            signed(
                Algorithm::RS256,
                Some("rsa-1"),
                &rsa,
                claims(json!({"aud": "other"})),
            ),
        ),
        (
            "HS256 with the wrong issuer",
            hs256_token(claims(json!({"iss": "https://evil.test"}))),
        ),
        (
            "HS256 without an audience",
            hs256_token(
                json!({"sub": "p", "tenant": tenant.name, "roles": ["reader"], "iss": "https://issuer.test"}),
            ),
        ),
    ];
    for (why, token) in refused {
        assert_eq!(
            status_for(
                &platform,
                &Caller::Bearer(token),
                Method::GET,
                "/api/v1/memories"
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "{why}"
        );
    }
    // Algorithm confusion: the RSA public key used as an HMAC secret is never accepted.
    let public_pem = fixture("rsa-public.pem");
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({"exp": chrono::Utc::now().timestamp() + 600})),
        &EncodingKey::from_secret(&public_pem),
    )
    .expect("signs");
    assert_eq!(
        status_for(
            &platform,
            &Caller::Bearer(confused),
            Method::GET,
            "/api/v1/memories"
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_against_a_jwks_file() {
    rs256_and_es256_tokens_verify_against_a_jwks(false).await;
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_against_a_jwks_url() {
    rs256_and_es256_tokens_verify_against_a_jwks(true).await;
}

#[tokio::test]
async fn grants_in_the_database_apply_without_a_restart() {
    let platform = TestPlatform::start(Backends::Embedded).await;
    let tenant = platform.create_tenant("Shared").await;
    let admin = tenant.api_key.as_str();
    platform
        .create_memory(
            admin,
            json!({"content": "The admin's own note.", "category": "PROJECT"}),
        )
        .await;
    let member = platform.issue_key(admin, "member").await;
    // A member sees only its own memories.
    assert!(platform.search(&member.api_key, "").await.is_empty());

    let grant = json!({"user_id": member.user_id, "role": "reader"});
    let (status, body) = platform
        .call(
            Method::POST,
            "/api/v1/grants",
            Some(admin),
            Some(grant.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        platform.search(&member.api_key, "").await.len(),
        1,
        "the grant applies at once"
    );
    let (_, grants) = platform
        .call(Method::GET, "/api/v1/grants", Some(admin), None)
        .await;
    assert_eq!(grants["grants"], json!([grant]));

    let path = format!("/api/v1/grants/{}/reader", member.user_id);
    let (status, _) = platform
        .call(Method::DELETE, &path, Some(admin), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        platform.search(&member.api_key, "").await.is_empty(),
        "revoked at once"
    );
    let (status, _) = platform
        .call(Method::DELETE, &path, Some(admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Grants name users of the tenant and tenant roles only.
    let other = platform.create_tenant("Shared").await;
    let (status, _) = platform
        .call(
            Method::POST,
            "/api/v1/grants",
            Some(admin),
            Some(json!({"user_id": other.user_id, "role": "reader"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = platform
        .call(
            Method::POST,
            "/api/v1/grants",
            Some(admin),
            Some(json!({"user_id": member.user_id, "role": "platform-admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A grant in one tenant gives nothing in another.
    let (_, other_grants) = platform
        .call(Method::GET, "/api/v1/grants", Some(&other.api_key), None)
        .await;
    assert_eq!(other_grants["grants"], json!([]));
    platform.shutdown().await;
}

#[tokio::test]
async fn platform_admins_reach_admin_routes_and_no_tenant_content() {
    let platform = TestPlatform::start(Backends::Embedded).await;
    let tenant = platform.create_tenant("Shared").await;
    let operator = Caller::Bearer(platform_admin_token());
    let (status, list) = platform
        .call_as(&operator, Method::GET, "/api/v1/admin/tenants", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list["tenants"]
            .as_array()
            .expect("tenants")
            .iter()
            .any(|t| t["tenant"] == tenant.name.as_str())
    );
    assert!(
        !list.to_string().contains("mck_"),
        "no keys in the tenant list"
    );
    let name = test_support::unique("t-");
    let (status, created) = platform
        .call_as(
            &operator,
            Method::POST,
            "/api/v1/admin/tenants",
            Some(json!({"tenant": name})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, _) = platform
        .call_as(
            &operator,
            Method::POST,
            "/api/v1/admin/tenants",
            Some(json!({"tenant": name})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let new_key = created["api_key"].as_str().expect("first key");
    platform
        .create_memory(new_key, json!({"content": "hello"}))
        .await;

    // No tenant content, with or without a tenant claim.
    assert_eq!(
        status_of(&platform, &operator, "/api/v1/memories").await,
        StatusCode::FORBIDDEN
    );
    let inside = Caller::Bearer(hs256_token(
        json!({"sub": "operator-1", "tenant": tenant.name, "roles": ["platform-admin"]}),
    ));
    assert_eq!(
        status_of(&platform, &inside, "/api/v1/memories").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&platform, &inside, "/api/v1/keys").await,
        StatusCode::FORBIDDEN
    );
    // Tenant admins do not reach the admin routes.
    let tenant_admin = Caller::Key(tenant.api_key.clone());
    assert_eq!(
        status_of(&platform, &tenant_admin, "/api/v1/admin/tenants").await,
        StatusCode::FORBIDDEN
    );
    platform.shutdown().await;
}

/// Another replica on `config`'s databases, with a data directory of its own.
async fn replica_of(config: Config) -> TestPlatform {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config;
    config.server.data_dir = dir.path().to_path_buf();
    TestPlatform::start_with(config, dir).await
}

async fn status_of(platform: &TestPlatform, caller: &Caller, path: &str) -> StatusCode {
    platform.call_as(caller, Method::GET, path, None).await.0
}

/// Replicas share one database. A verified key is trusted for `security.api_key_cache` without asking
/// the database again: a key revoked through one replica stops there at once, on a replica
/// that does not cache at once, and on a caching replica once its trust runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_stops_on_every_postgres_replica_within_its_trust_window() {
    let replica = |trust_ms: u64, config: &Config| {
        let mut config = config.clone();
        config.security.api_key_cache = Duration::from_millis(trust_ms);
        replica_of(config)
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let base = test_support::test_config(Backends::PostgresMilvus, dir.path().to_path_buf());
    let revoking = TestPlatform::start_with(base.clone(), dir).await;
    let uncached = replica(0, &base).await;
    let short = replica(500, &base).await;
    let long = replica(600_000, &base).await;
    let tenant = revoking.create_tenant("Shared").await;
    let reader = revoking.issue_key(&tenant.api_key, "reader").await;
    for platform in [&revoking, &uncached, &short, &long] {
        let (status, _) = platform
            .call(Method::GET, "/api/v1/memories", Some(&reader.api_key), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    let path = format!("/api/v1/keys/{}", reader.key_id);
    let (status, _) = revoking
        .call(Method::DELETE, &path, Some(&tenant.api_key), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (platform, expected) in [
        (&revoking, StatusCode::UNAUTHORIZED),
        (&uncached, StatusCode::UNAUTHORIZED),
        (&long, StatusCode::OK),
    ] {
        let (status, _) = platform
            .call(Method::GET, "/api/v1/memories", Some(&reader.api_key), None)
            .await;
        assert_eq!(status, expected, "right after the revocation");
    }
    let stopped = test_support::eventually(Duration::from_secs(10), || async {
        short
            .call(Method::GET, "/api/v1/memories", Some(&reader.api_key), None)
            .await
            .0
            == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(stopped, "the short trust window never ran out");
    for platform in [uncached, short, long] {
        platform.shutdown_keeping_data().await;
    }
    revoking.shutdown().await;
}

/// Replicas share one database, and the operator deletes a tenant behind their backs (its
/// registration row; the keys go with it). A replica that resolves tenants on every request
/// refuses the tenant's token and key at once; one that trusts a resolved tenant for
/// `storage.tenant_cache` still serves it, then refuses it once that trust runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_the_operator_deletes_from_postgres_is_refused_within_its_trust_window() {
    use sea_orm::ConnectionTrait;
    let replica = |trust_ms: u64, config: &Config| {
        let mut config = config.clone();
        config.security.api_key_cache = Duration::from_millis(trust_ms);
        config.storage.tenant_cache = Duration::from_millis(trust_ms);
        replica_of(config)
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let base = test_support::test_config(Backends::PostgresMilvus, dir.path().to_path_buf());
    let uncached = replica(0, &base).await;
    let short = replica(500, &base).await;
    let long = replica(600_000, &base).await;
    let tenant = uncached.create_tenant("Shared").await;
    let token = Caller::Bearer(hs256_token(
        json!({"sub": "agent-9", "tenant": tenant.name, "roles": ["service"]}),
    ));
    let key = Caller::Key(tenant.api_key.clone());
    for platform in [&uncached, &short, &long] {
        for caller in [&token, &key] {
            assert_eq!(
                status_of(platform, caller, "/api/v1/memories").await,
                StatusCode::OK
            );
        }
    }

    let control = uncached.databases().await.control();
    let deleted = control
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "DELETE FROM tenants WHERE name = $1",
            [tenant.name.clone().into()],
        ))
        .await
        .expect("tenant row deleted");
    assert_eq!(deleted.rows_affected(), 1);

    for caller in [&token, &key] {
        assert_eq!(
            status_of(&uncached, caller, "/api/v1/memories").await,
            StatusCode::UNAUTHORIZED,
            "right after the deletion, uncached"
        );
    }
    // The schema is still there, so only the kept tenant can be what lets the token in.
    assert_eq!(
        status_of(&long, &token, "/api/v1/memories").await,
        StatusCode::OK,
        "right after the deletion, trusted for ten minutes"
    );
    for caller in [&token, &key] {
        let refused = test_support::eventually(Duration::from_secs(10), || async {
            status_of(&short, caller, "/api/v1/memories").await == StatusCode::UNAUTHORIZED
        })
        .await;
        assert!(
            refused,
            "the short trust window never ran out for {caller:?}"
        );
    }
    for platform in [short, long] {
        platform.shutdown_keeping_data().await;
    }
    uncached.shutdown().await;
}

/// A JWKS endpoint that keeps failing is asked again only after a growing wait: a flood of
/// tokens with unknown keys does not turn into a fetch per request.
#[tokio::test]
async fn a_failing_jwks_endpoint_is_not_fetched_per_request() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let fetches = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let counted = fetches.clone();
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { axum::http::StatusCode::SERVICE_UNAVAILABLE }
        }),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_support::test_config(Backends::Embedded, data_dir.path().to_path_buf());
    config.security.jwt_jwks_url = Some(format!("http://{address}/.well-known/jwks.json"));
    let platform = TestPlatform::start_with(config, data_dir).await;
    let tenant = platform.create_tenant("Shared").await;
    let at_start = fetches.load(Ordering::SeqCst);
    let rsa = rsa_key("rsa-private.pem");
    for n in 0..30 {
        let token = signed(
            Algorithm::RS256,
            Some(&format!("unknown-{n}")),
            &rsa,
            json!({"sub": "person-1", "tenant": tenant.name, "roles": ["reader"]}),
        );
        let (status, _) = platform
            .call_as(
                &Caller::Bearer(token),
                Method::GET,
                "/api/v1/memories",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let during = fetches.load(Ordering::SeqCst) - at_start;
    assert!(during <= 3, "{during} fetches for 30 tokens");
    platform.shutdown().await;
    server.abort();
}
