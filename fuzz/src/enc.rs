//! Leaf input types, and the encoder that writes the bytes `arbitrary` decodes into a value.
//!
//! `arbitrary` 1.x reads integers little-endian (zero-padded when the input runs out), a `bool`
//! as the low bit of one byte, an `Option` as a `bool` then the value, an enum as a `u32` `t`
//! choosing variant `(t * n) >> 32` of `n`, and a `Vec` (nested or last) as a `true` byte before
//! each element and a `false` byte (or the end of the input) after the last. Strings and byte
//! strings are our own [`Text`] and [`Bytes`]: a `u16` length, then that many bytes.

use arbitrary::{Arbitrary, Result, Unstructured};

/// Bytes that `arbitrary` decodes into a value of this type.
pub trait Encode {
    /// Appends this value's encoding.
    fn encode(&self, e: &mut Encoder);

    /// The encoding of this value alone.
    fn to_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        self.encode(&mut e);
        e.0
    }
}

/// An output buffer with one writer per primitive of `arbitrary`'s format.
#[derive(Default)]
pub struct Encoder(pub Vec<u8>);

impl Encoder {
    /// Variant `index` of an enum of `count` variants.
    pub fn tag(&mut self, index: usize, count: usize) {
        assert!(index < count);
        let t = ((index as u64) << 32).div_ceil(count as u64);
        self.u32(u32::try_from(t).expect("tag fits in u32"));
    }
    /// A `u8`.
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    /// A `u16`.
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A `u32`.
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A `u64`.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// An `i16`.
    pub fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// An `i64`.
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// A `bool`.
    pub fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
    /// Length-prefixed raw bytes ([`Bytes`], [`Text`]).
    pub fn raw(&mut self, b: &[u8]) {
        self.u16(u16::try_from(b.len()).expect("seed strings are under 64 KiB"));
        self.0.extend_from_slice(b);
    }
}

impl Encode for u8 {
    fn encode(&self, e: &mut Encoder) {
        e.u8(*self)
    }
}
impl Encode for u16 {
    fn encode(&self, e: &mut Encoder) {
        e.u16(*self)
    }
}
impl Encode for u32 {
    fn encode(&self, e: &mut Encoder) {
        e.u32(*self)
    }
}
impl Encode for u64 {
    fn encode(&self, e: &mut Encoder) {
        e.u64(*self)
    }
}
impl Encode for i16 {
    fn encode(&self, e: &mut Encoder) {
        e.i16(*self)
    }
}
impl Encode for i64 {
    fn encode(&self, e: &mut Encoder) {
        e.i64(*self)
    }
}
impl Encode for bool {
    fn encode(&self, e: &mut Encoder) {
        e.bool(*self)
    }
}
impl<T: Encode> Encode for Option<T> {
    fn encode(&self, e: &mut Encoder) {
        e.bool(self.is_some());
        if let Some(v) = self {
            v.encode(e);
        }
    }
}
impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, e: &mut Encoder) {
        for item in self {
            e.bool(true);
            item.encode(e);
        }
        e.bool(false);
    }
}
impl<A: Encode, B: Encode> Encode for (A, B) {
    fn encode(&self, e: &mut Encoder) {
        self.0.encode(e);
        self.1.encode(e);
    }
}

/// Reads a `u16` length, then up to that many bytes (fewer when the input runs out).
fn length_prefixed<'a>(u: &mut Unstructured<'a>) -> Result<&'a [u8]> {
    let len = usize::from(u16::arbitrary(u)?).min(u.len());
    u.bytes(len)
}

/// Arbitrary bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl<'a> Arbitrary<'a> for Bytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Bytes(length_prefixed(u)?.to_vec()))
    }
}
impl Encode for Bytes {
    fn encode(&self, e: &mut Encoder) {
        e.raw(&self.0)
    }
}

/// An arbitrary string (invalid UTF-8 in the input is replaced by U+FFFD).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'a> Arbitrary<'a> for Text {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(Text(
            String::from_utf8_lossy(length_prefixed(u)?).into_owned(),
        ))
    }
}
impl Encode for Text {
    fn encode(&self, e: &mut Encoder) {
        e.raw(self.0.as_bytes())
    }
}
impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text(s.to_owned())
    }
}

/// Picks `list[i % len]`.
pub fn pick<T: Copy>(list: &[T], i: u8) -> T {
    list[usize::from(i) % list.len()]
}

/// Decodes `bytes` as a `T` the way libFuzzer's `fuzz_target!` does.
pub fn decode<'a, T: Arbitrary<'a>>(bytes: &'a [u8]) -> Result<T> {
    T::arbitrary_take_rest(Unstructured::new(bytes))
}
