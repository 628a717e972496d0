//! Oracles shared by the targets, written independently of the core's own code. The wire
//! format's are the reference model's (`switchboard-model`, `core/model/src/wire.rs`).

pub use switchboard_model::wire::{expected_timestamp, is_protocol_close_code, server_message};

/// Unpadded base64url (RFC 4648 §5), as JWT segments use.
pub fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(b64url(b"{\"alg\":\"HS256\"}"), "eyJhbGciOiJIUzI1NiJ9");
        assert_eq!(b64url(b"ab"), "YWI");
        assert_eq!(b64url(b"a"), "YQ");
    }
}
