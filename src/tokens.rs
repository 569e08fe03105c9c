//! Bearer tokens: HS256 JWTs carrying a role, a subject, `iat`/`nbf`/`exp` and a key id.
//!
//! HS256 is small enough to implement with `hmac` + `sha2` directly, which avoids pulling in a
//! JWT crate's RSA/EC stacks for a single algorithm. Signatures are compared in constant time.
//!
//! A server never runs on a known secret: without `DABBA_JWT_SECRET` it generates one into
//! its data directory (owner-only), and `dabba token`, the demo and the load generator read
//! the same file. Two keys verify at once (current and previous) so a secret can be rotated
//! without logging anybody out: tokens name their key by `kid`, derived from the secret.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Shortest secret accepted: HS256 is only as strong as its key.
pub const MIN_SECRET_BYTES: usize = 32;
/// Clock skew tolerated between the minting and the verifying machine.
const LEEWAY_SECS: i64 = 60;
/// Name of the generated secret inside the data directory.
pub const SECRET_FILE: &str = "jwt-secret";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Rider,
    Restaurant,
    Ops,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// The longest a token of each role may live, checked when minting and when verifying.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct Lifetimes {
    /// Longest lifetime of an ops token, in hours (ops tokens open everything: keep it short).
    #[arg(long, env = "DABBA_OPS_TOKEN_MAX_HOURS", default_value_t = 12)]
    pub ops_token_max_hours: i64,
    /// Longest lifetime of a customer, rider or restaurant token, in hours.
    #[arg(long, env = "DABBA_TOKEN_MAX_HOURS", default_value_t = 24 * 30)]
    pub token_max_hours: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            ops_token_max_hours: 12,
            token_max_hours: 24 * 30,
        }
    }
}

impl Lifetimes {
    pub fn max(&self, role: Role) -> chrono::Duration {
        chrono::Duration::hours(match role {
            Role::Ops => self.ops_token_max_hours,
            _ => self.token_max_hours,
        })
    }
}

/// Where the signing secrets come from (flags or environment; else the data directory).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct SecretArgs {
    /// HS256 signing secret, at least 32 bytes. Unset: generated once into the data directory.
    #[arg(long, env = "DABBA_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The secret before the last rotation: its tokens keep verifying until they expire.
    #[arg(long, env = "DABBA_JWT_PREVIOUS_SECRET", hide_env_values = true)]
    pub jwt_previous_secret: Option<String>,
}

/// Why no keys could be made.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{name} is {len} bytes; at least {MIN_SECRET_BYTES} are required")]
    TooShort { name: &'static str, len: usize },
    #[error("reading or creating the secret file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SecretArgs {
    /// The keys these arguments name; without a configured secret, the data directory's
    /// generated one (created on first use).
    pub fn keys(&self, data_dir: &Path, lifetimes: Lifetimes) -> Result<Keys, SecretError> {
        let current = match &self.jwt_secret {
            Some(s) => checked("DABBA_JWT_SECRET", s)?.to_owned(),
            None => load_or_create(&data_dir.join(SECRET_FILE))?,
        };
        let previous = match &self.jwt_previous_secret {
            Some(s) if !s.is_empty() => Some(checked("DABBA_JWT_PREVIOUS_SECRET", s)?),
            _ => None,
        };
        let mut keys = Keys::new(&current).with_lifetimes(lifetimes);
        if let Some(previous) = previous {
            keys = keys.with_previous(previous);
        }
        Ok(keys)
    }

    /// Whether the secret is generated per data directory (fine on one node, not a cluster).
    pub fn generated(&self) -> bool {
        self.jwt_secret.is_none()
    }
}

fn checked<'a>(name: &'static str, secret: &'a str) -> Result<&'a str, SecretError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(SecretError::TooShort {
            name,
            len: secret.len(),
        });
    }
    Ok(secret)
}

/// Reads the secret at `path`, or writes a new random one there (mode 0600, never
/// overwriting a file another process created first).
fn load_or_create(path: &Path) -> Result<String, SecretError> {
    let err = |source| SecretError::File {
        path: path.to_owned(),
        source,
    };
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim().to_owned();
        checked("the secret file", &existing)?;
        return Ok(existing);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let secret: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes()).map_err(err)?;
            file.sync_all().map_err(err)?;
            Ok(secret)
        }
        // Another process won the race: use its secret.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let existing = std::fs::read_to_string(path).map_err(err)?;
            Ok(existing.trim().to_owned())
        }
        Err(e) => Err(err(e)),
    }
}

#[derive(Clone)]
struct Key {
    /// First 8 bytes of SHA-256 of the secret, hex: names the key without revealing it.
    id: String,
    secret: Vec<u8>,
}

impl Key {
    fn new(secret: &str) -> Self {
        let digest = Sha256::digest(secret.as_bytes());
        Self {
            id: digest[..8].iter().map(|b| format!("{b:02x}")).collect(),
            secret: secret.as_bytes().to_vec(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; this cannot fail.
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("hmac takes any key length")
    }
}

/// The server's signing key, the previous one it still accepts, and the lifetime rules.
#[derive(Clone)]
pub struct Keys {
    current: Key,
    previous: Option<Key>,
    lifetimes: Lifetimes,
}

/// Why a token was refused (the message of the `401`).
pub type Refusal = &'static str;

impl Keys {
    /// Keys over `secret` with the default lifetimes. Length is checked where secrets are
    /// configured ([`SecretArgs::keys`]), not here: clients and tests mint with this too.
    pub fn new(secret: &str) -> Self {
        Self {
            current: Key::new(secret),
            previous: None,
            lifetimes: Lifetimes::default(),
        }
    }

    pub fn with_previous(mut self, secret: &str) -> Self {
        self.previous = Some(Key::new(secret));
        self
    }

    pub fn with_lifetimes(mut self, lifetimes: Lifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    pub fn lifetimes(&self) -> Lifetimes {
        self.lifetimes
    }

    /// A token for `sub` as `role`, living `ttl` (at most the role's maximum).
    pub fn mint(&self, role: Role, sub: Uuid, ttl: chrono::Duration) -> String {
        let now = chrono::Utc::now().timestamp();
        let ttl = ttl.min(self.lifetimes.max(role));
        self.sign(&Claims {
            sub,
            role,
            iat: now,
            nbf: now,
            exp: now + ttl.num_seconds(),
        })
    }

    /// Signs `claims` as they are, with the current key (tests forge odd claims with it).
    pub fn sign(&self, claims: &Claims) -> String {
        let header = Header {
            alg: "HS256",
            typ: "JWT",
            kid: &self.current.id,
        };
        // Plain data: serialising cannot fail.
        let header = B64.encode(serde_json::to_vec(&header).expect("header serialises"));
        let payload = B64.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.current.mac();
        mac.update(signing_input.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    pub fn verify(&self, token: &str) -> Result<Claims, Refusal> {
        self.verify_at(token, chrono::Utc::now().timestamp())
    }

    pub fn verify_at(&self, token: &str, now: i64) -> Result<Claims, Refusal> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("malformed token");
        };
        let header_bytes = B64.decode(h).map_err(|_| "malformed token header")?;
        let header: Header<'_> =
            serde_json::from_slice(&header_bytes).map_err(|_| "malformed token header")?;
        if header.alg != "HS256" {
            return Err("unsupported token algorithm");
        }
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == header.kid)
            .ok_or("token signed with an unknown key")?;
        let sig = B64.decode(s).map_err(|_| "malformed token signature")?;
        let mut mac = key.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        mac.verify_slice(&sig).map_err(|_| "bad token signature")?;
        let claims: Claims = B64
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("malformed token claims")?;
        self.check_times(&claims, now)?;
        Ok(claims)
    }

    fn check_times(&self, c: &Claims, now: i64) -> Result<(), Refusal> {
        if c.iat > now + LEEWAY_SECS || c.nbf > now + LEEWAY_SECS {
            return Err("token not valid yet");
        }
        if c.exp <= now {
            return Err("token expired");
        }
        let lifetime = c.exp.saturating_sub(c.iat.min(c.nbf));
        if lifetime > self.lifetimes.max(c.role).num_seconds() + LEEWAY_SECS {
            return Err("token lifetime exceeds the maximum for its role");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";

    fn claims(role: Role, iat: i64, nbf: i64, exp: i64) -> Claims {
        Claims {
            sub: Uuid::new_v4(),
            role,
            iat,
            nbf,
            exp,
        }
    }

    #[test]
    fn tokens_verify_only_with_the_right_secret() {
        let keys = Keys::new(SECRET);
        let sub = Uuid::new_v4();
        let t = keys.mint(Role::Rider, sub, chrono::Duration::hours(1));
        let c = keys.verify(&t).unwrap();
        assert_eq!((c.role, c.sub), (Role::Rider, sub));
        assert_eq!(
            Keys::new(OTHER).verify(&t).unwrap_err(),
            "token signed with an unknown key"
        );
        let mut tampered = t.clone();
        tampered.insert(t.find('.').unwrap() + 3, 'x');
        assert!(keys.verify(&tampered).is_err());
    }

    #[test]
    fn times_are_checked() {
        let keys = Keys::new(SECRET);
        let now = 1_800_000_000;
        let at = |c: &Claims| keys.verify_at(&keys.sign(c), now);
        assert!(at(&claims(Role::Rider, now, now, now + 60)).is_ok());
        assert_eq!(
            at(&claims(Role::Rider, now - 120, now - 120, now - 1)).unwrap_err(),
            "token expired"
        );
        assert_eq!(
            at(&claims(Role::Rider, now, now, i64::MAX)).unwrap_err(),
            "token lifetime exceeds the maximum for its role"
        );
        assert_eq!(
            at(&claims(Role::Rider, now + 3600, now, now + 7200)).unwrap_err(),
            "token not valid yet"
        );
        assert_eq!(
            at(&claims(Role::Rider, now, now + 3600, now + 7200)).unwrap_err(),
            "token not valid yet"
        );
        // Ops tokens live 12 h at most by default; others 30 days.
        assert!(at(&claims(Role::Ops, now, now, now + 13 * 3600)).is_err());
        assert!(at(&claims(Role::Customer, now, now, now + 13 * 3600)).is_ok());
    }

    #[test]
    fn minting_caps_the_lifetime_at_the_roles_maximum() {
        let keys = Keys::new(SECRET);
        let t = keys.mint(
            Role::Ops,
            Uuid::new_v4(),
            chrono::Duration::hours(100_000_000),
        );
        let c = keys.verify(&t).unwrap();
        assert_eq!(c.exp - c.iat, 12 * 3600);
    }

    #[test]
    fn the_previous_key_keeps_verifying_after_a_rotation() {
        let old = Keys::new(OTHER);
        let token = old.mint(Role::Customer, Uuid::new_v4(), chrono::Duration::hours(1));
        let rotated = Keys::new(SECRET).with_previous(OTHER);
        assert!(rotated.verify(&token).is_ok());
        assert!(Keys::new(SECRET).verify(&token).is_err());
        // New tokens are signed with the new key.
        let fresh = rotated.mint(Role::Customer, Uuid::new_v4(), chrono::Duration::hours(1));
        assert!(Keys::new(SECRET).verify(&fresh).is_ok());
    }

    #[test]
    fn short_secrets_are_refused_and_a_missing_one_is_generated_once() {
        let dir = std::env::temp_dir().join(format!("dabba-secret-{}", Uuid::new_v4()));
        let short = SecretArgs {
            jwt_secret: Some(String::new()),
            jwt_previous_secret: None,
        };
        assert!(matches!(
            short.keys(&dir, Lifetimes::default()),
            Err(SecretError::TooShort { len: 0, .. })
        ));
        let generated = SecretArgs::default();
        let a = generated.keys(&dir, Lifetimes::default()).unwrap();
        let b = generated.keys(&dir, Lifetimes::default()).unwrap();
        let t = a.mint(Role::Ops, Uuid::new_v4(), chrono::Duration::hours(1));
        assert!(b.verify(&t).is_ok(), "the second reader uses the same file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
