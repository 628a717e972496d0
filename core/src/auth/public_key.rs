//! Tokens from an identity provider: RS256, ES256 or ES384, the algorithm pinned to the type
//! of the public key the server is given (an HS256 token, or one of another algorithm, is
//! refused whatever its signature: no algorithm confusion).

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};

use super::{verify_signed, AuthError, Claims, Verifier};

/// `rsaEncryption`, `id-ecPublicKey` and the curves, as DER object identifiers.
const RSA: &[u8] = &[
    0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01,
];
const EC: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

/// Why a public key cannot verify tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not a PEM block of a public key.
    #[error("not a PEM public key (expected -----BEGIN PUBLIC KEY-----)")]
    NotPem,
    /// A private key: the server needs only the public half.
    #[error("this is a private key: give the public key (openssl pkey -in KEY -pubout)")]
    PrivateKey,
    /// A key of a type no algorithm here takes.
    #[error(
        "unsupported key type: use an RSA key (RS256) or an EC P-256 (ES256) or P-384 (ES384) key"
    )]
    Unsupported,
    /// The PEM block does not hold a valid key.
    #[error("the key does not parse: {0}")]
    Invalid(String),
}

/// Verifies tokens signed by the private half of one public key.
#[derive(Clone)]
pub struct PublicKeyVerifier {
    key: DecodingKey,
    algorithm: Algorithm,
}

impl PublicKeyVerifier {
    /// A verifier of a PEM public key (`PUBLIC KEY`, or `RSA PUBLIC KEY`): RSA keys take RS256,
    /// EC P-256 keys ES256, EC P-384 keys ES384.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let text = std::str::from_utf8(pem).map_err(|_| KeyError::NotPem)?;
        let (label, der) = pem_block(text)?;
        let algorithm = match label {
            "RSA PUBLIC KEY" => Algorithm::RS256,
            "PUBLIC KEY" if contains(&der, RSA) => Algorithm::RS256,
            "PUBLIC KEY" if contains(&der, EC) && contains(&der, P256) => Algorithm::ES256,
            "PUBLIC KEY" if contains(&der, EC) && contains(&der, P384) => Algorithm::ES384,
            "PUBLIC KEY" => return Err(KeyError::Unsupported),
            l if l.contains("PRIVATE KEY") => return Err(KeyError::PrivateKey),
            _ => return Err(KeyError::NotPem),
        };
        let key = match algorithm {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(pem),
            _ => DecodingKey::from_ec_pem(pem),
        }
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
        Ok(PublicKeyVerifier { key, algorithm })
    }

    /// The one algorithm accepted: `RS256`, `ES256` or `ES384`.
    pub fn algorithm(&self) -> &'static str {
        match self.algorithm {
            Algorithm::RS256 => "RS256",
            Algorithm::ES384 => "ES384",
            _ => "ES256",
        }
    }
}

impl std::fmt::Debug for PublicKeyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKeyVerifier")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl Verifier for PublicKeyVerifier {
    fn verify(&self, token: &str, _now_unix_millis: u64) -> Result<Claims, AuthError> {
        verify_signed(token, &self.key, self.algorithm)
    }
}

/// The first PEM block's label and bytes.
fn pem_block(text: &str) -> Result<(&str, Vec<u8>), KeyError> {
    let start = text.find("-----BEGIN ").ok_or(KeyError::NotPem)?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----").ok_or(KeyError::NotPem)?;
    let end = rest.find("-----END ").ok_or(KeyError::NotPem)?;
    let body: String = rest[..end].split_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| KeyError::NotPem)?;
    Ok((label, der))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const RSA_PUBLIC: &[u8] = include_bytes!("../../tests/keys/rsa-public.pem");
    const RSA_PRIVATE: &[u8] = include_bytes!("../../tests/keys/rsa-private.pem");
    const EC_PUBLIC: &[u8] = include_bytes!("../../tests/keys/ec-public.pem");
    const EC_PRIVATE: &[u8] = include_bytes!("../../tests/keys/ec-private.pem");
    const EC384_PUBLIC: &[u8] = include_bytes!("../../tests/keys/ec384-public.pem");
    const EC384_PRIVATE: &[u8] = include_bytes!("../../tests/keys/ec384-private.pem");

    fn claims() -> Claims {
        Claims {
            sub: "alice".into(),
            exp: 4_000_000_000,
            device: None,
            topics: None,
            info: None,
        }
    }

    fn sign(algorithm: Algorithm, key: &EncodingKey) -> String {
        jsonwebtoken::encode(&Header::new(algorithm), &claims(), key).unwrap()
    }

    #[test]
    fn each_key_type_pins_its_algorithm_and_verifies_its_tokens() {
        for (public, private, algorithm, name) in [
            (RSA_PUBLIC, RSA_PRIVATE, Algorithm::RS256, "RS256"),
            (EC_PUBLIC, EC_PRIVATE, Algorithm::ES256, "ES256"),
            (EC384_PUBLIC, EC384_PRIVATE, Algorithm::ES384, "ES384"),
        ] {
            let verifier = PublicKeyVerifier::from_pem(public).unwrap();
            assert_eq!(verifier.algorithm(), name);
            let key = match algorithm {
                Algorithm::RS256 => EncodingKey::from_rsa_pem(private),
                _ => EncodingKey::from_ec_pem(private),
            }
            .unwrap();
            let token = sign(algorithm, &key);
            assert_eq!(verifier.verify(&token, 0).unwrap().sub, "alice", "{name}");
            let mut tampered = token.clone();
            let last = tampered.pop().unwrap();
            tampered.push(if last == 'A' { 'B' } else { 'A' });
            assert!(verifier.verify(&tampered, 0).is_err(), "{name}: tampered");
        }
    }

    #[test]
    fn a_token_of_another_algorithm_is_refused_whatever_its_signature() {
        let rsa = PublicKeyVerifier::from_pem(RSA_PUBLIC).unwrap();
        // The classic confusion: HS256 "signed" with the public key's bytes as the secret.
        let confused = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(RSA_PUBLIC),
        )
        .unwrap();
        assert_eq!(rsa.verify(&confused, 0), Err(AuthError::WrongAlgorithm));
        let es = sign(
            Algorithm::ES256,
            &EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
        );
        assert_eq!(rsa.verify(&es, 0), Err(AuthError::WrongAlgorithm));
        let ec = PublicKeyVerifier::from_pem(EC_PUBLIC).unwrap();
        let rs = sign(
            Algorithm::RS256,
            &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        );
        assert_eq!(ec.verify(&rs, 0), Err(AuthError::WrongAlgorithm));
    }

    #[test]
    fn a_key_that_cannot_verify_is_refused_saying_why() {
        assert_eq!(
            PublicKeyVerifier::from_pem(RSA_PRIVATE).unwrap_err(),
            KeyError::PrivateKey
        );
        assert_eq!(
            PublicKeyVerifier::from_pem(b"not a key").unwrap_err(),
            KeyError::NotPem
        );
        let garbage = b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert_eq!(
            PublicKeyVerifier::from_pem(garbage).unwrap_err(),
            KeyError::Unsupported
        );
    }
}
