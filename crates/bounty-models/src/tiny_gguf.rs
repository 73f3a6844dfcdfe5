//! A tiny random-weight llama GGUF, written in pure Rust, so that tests run
//! real llama.cpp inference on every machine without downloading weights,
//! and `bounty serve --demo` has a real local model to run (its text is
//! noise: the weights are random).
//!
//! The layout follows `../shared/tools/make_tiny_llama.py` (gguf-py): GGUF
//! version 3, the `llama` architecture, an SPM (`tokenizer.ggml.model =
//! "llama"`) vocabulary of `<unk> <s> </s>`, the 256 byte-fallback tokens,
//! `▁`, every printable ASCII character and a few `▁word` tokens, so any
//! text tokenizes. Tensors are F32, drawn from a seeded normal distribution
//! (splitmix64 + Box-Muller): the same seed writes the same bytes.
//!
//! One deliberate difference from the Python script: the `</s>` row of
//! `output.weight` is zero. Its logit is then always 0 while the largest of
//! the other ~360 random logits is positive, so greedy decoding never ends
//! early and `max_tokens` tests are deterministic. Grammar-constrained
//! decoding still ends, because the grammar masks every other token once
//! the JSON value is complete.
//!
//! [`stories260k`] finds the real 260K-parameter model that some machines
//! keep next to the workspace.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// GGUF metadata value types (`gguf_type`).
const GGUF_TYPE_UINT32: u32 = 4;
const GGUF_TYPE_INT32: u32 = 5;
const GGUF_TYPE_FLOAT32: u32 = 6;
const GGUF_TYPE_BOOL: u32 = 7;
const GGUF_TYPE_STRING: u32 = 8;
const GGUF_TYPE_ARRAY: u32 = 9;
/// `ggml_type` of the tensors.
const GGML_TYPE_F32: u32 = 0;
/// `general.alignment`'s default, which llama.cpp assumes when it is absent.
const ALIGNMENT: u64 = 32;
/// `general.file_type`: every tensor F32.
const LLAMA_FTYPE_ALL_F32: u32 = 0;

/// Token types of `tokenizer.ggml.token_type` (`llama_token_type`).
const TOKEN_NORMAL: i32 = 1;
const TOKEN_UNKNOWN: i32 = 2;
const TOKEN_CONTROL: i32 = 3;
const TOKEN_BYTE: i32 = 6;

/// Words that get a token of their own, after the single characters.
const WORDS: [&str; 11] = [
    "the", "a", "yes", "no", "hello", "world", "name", "age", "true", "false", "null",
];

/// Shape and seed of a tiny llama. The defaults match the Python script:
/// 64-wide, 2 layers, 4 heads (2 KV heads), a 512-token training context,
/// about 0.5 MB on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TinyLlama {
    /// Seed of the weights.
    pub seed: u64,
    /// Embedding width; a multiple of `n_head`.
    pub n_embd: u32,
    /// Hidden width of the feed-forward layers.
    pub n_ff: u32,
    pub n_layer: u32,
    pub n_head: u32,
    /// KV heads; divides `n_head`.
    pub n_head_kv: u32,
    /// Training context (`llama.context_length`).
    pub n_ctx_train: u32,
    /// `tokenizer.chat_template`; `None` (the default) leaves it out, as
    /// llama2.c-converted models do.
    pub chat_template: Option<String>,
}

impl Default for TinyLlama {
    fn default() -> Self {
        TinyLlama {
            seed: 0,
            n_embd: 64,
            n_ff: 128,
            n_layer: 2,
            n_head: 4,
            n_head_kv: 2,
            n_ctx_train: 512,
            chat_template: None,
        }
    }
}

/// One vocabulary entry.
struct Token {
    text: String,
    score: f32,
    kind: i32,
}

/// The vocabulary: special tokens, byte fallbacks, then pieces scored by
/// rank (SPM prefers higher scores when merging).
fn vocabulary() -> Vec<Token> {
    let mut tokens = vec![
        Token {
            text: "<unk>".into(),
            score: 0.0,
            kind: TOKEN_UNKNOWN,
        },
        Token {
            text: "<s>".into(),
            score: 0.0,
            kind: TOKEN_CONTROL,
        },
        Token {
            text: "</s>".into(),
            score: 0.0,
            kind: TOKEN_CONTROL,
        },
    ];
    tokens.extend((0..=255u8).map(|b| Token {
        text: format!("<0x{b:02X}>"),
        score: 0.0,
        kind: TOKEN_BYTE,
    }));
    let pieces = std::iter::once("\u{2581}".to_owned())
        .chain((33u8..127).map(|c| char::from(c).to_string()))
        .chain(WORDS.iter().map(|w| format!("\u{2581}{w}")));
    tokens.extend(pieces.enumerate().map(|(i, text)| Token {
        text,
        score: -(i as f32),
        kind: TOKEN_NORMAL,
    }));
    tokens
}

const BOS_ID: u32 = 1;
const EOS_ID: u32 = 2;
const UNK_ID: u32 = 0;

impl TinyLlama {
    /// Size of the vocabulary every tiny llama has.
    pub fn n_vocab() -> u32 {
        vocabulary().len() as u32
    }

    /// Writes the GGUF to `path`.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        self.check()?;
        let mut out = BufWriter::new(File::create(path)?);
        self.write_to(&mut out)?;
        out.flush()
    }

    fn check(&self) -> io::Result<()> {
        let invalid = |what: &str| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("tiny llama: {what}"),
            ))
        };
        if [
            self.n_embd,
            self.n_ff,
            self.n_layer,
            self.n_head,
            self.n_head_kv,
            self.n_ctx_train,
        ]
        .contains(&0)
        {
            return invalid("every dimension must be at least 1");
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return invalid("n_embd must be a multiple of n_head");
        }
        if !self.n_head.is_multiple_of(self.n_head_kv) {
            return invalid("n_head_kv must divide n_head");
        }
        Ok(())
    }

    fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let vocab = vocabulary();
        let n_vocab = vocab.len() as u64;
        let (n_embd, n_ff) = (u64::from(self.n_embd), u64::from(self.n_ff));
        let n_embd_kv = n_embd / u64::from(self.n_head) * u64::from(self.n_head_kv);

        // Tensors as (name, ggml ne: innermost dimension first, kind).
        let mut tensors: Vec<(String, Vec<u64>, Fill)> = vec![
            ("token_embd.weight".into(), vec![n_embd, n_vocab], Fill::Random),
            ("output_norm.weight".into(), vec![n_embd], Fill::Ones),
            (
                "output.weight".into(),
                vec![n_embd, n_vocab],
                Fill::RandomZeroRow(u64::from(EOS_ID)),
            ),
        ];
        for i in 0..self.n_layer {
            let blk = |name: &str| format!("blk.{i}.{name}.weight");
            tensors.extend([
                (blk("attn_norm"), vec![n_embd], Fill::Ones),
                (blk("attn_q"), vec![n_embd, n_embd], Fill::Random),
                (blk("attn_k"), vec![n_embd, n_embd_kv], Fill::Random),
                (blk("attn_v"), vec![n_embd, n_embd_kv], Fill::Random),
                (blk("attn_output"), vec![n_embd, n_embd], Fill::Random),
                (blk("ffn_norm"), vec![n_embd], Fill::Ones),
                (blk("ffn_gate"), vec![n_embd, n_ff], Fill::Random),
                (blk("ffn_up"), vec![n_embd, n_ff], Fill::Random),
                (blk("ffn_down"), vec![n_ff, n_embd], Fill::Random),
            ]);
        }

        let mut kv = Metadata::default();
        kv.string("general.architecture", "llama");
        kv.string("general.name", "tiny-random-llama");
        kv.u32("llama.context_length", self.n_ctx_train);
        kv.u32("llama.embedding_length", self.n_embd);
        kv.u32("llama.block_count", self.n_layer);
        kv.u32("llama.feed_forward_length", self.n_ff);
        kv.u32("llama.attention.head_count", self.n_head);
        kv.u32("llama.attention.head_count_kv", self.n_head_kv);
        kv.u32("llama.rope.dimension_count", self.n_embd / self.n_head);
        kv.f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
        kv.u32("general.file_type", LLAMA_FTYPE_ALL_F32);
        kv.string("tokenizer.ggml.model", "llama");
        kv.string_array("tokenizer.ggml.tokens", vocab.iter().map(|t| t.text.as_str()));
        kv.f32_array("tokenizer.ggml.scores", vocab.iter().map(|t| t.score));
        kv.i32_array("tokenizer.ggml.token_type", vocab.iter().map(|t| t.kind));
        kv.u32("tokenizer.ggml.bos_token_id", BOS_ID);
        kv.u32("tokenizer.ggml.eos_token_id", EOS_ID);
        kv.u32("tokenizer.ggml.unknown_token_id", UNK_ID);
        kv.bool("tokenizer.ggml.add_bos_token", true);
        kv.bool("tokenizer.ggml.add_eos_token", false);
        if let Some(template) = &self.chat_template {
            kv.string("tokenizer.chat_template", template);
        }

        // Header.
        let mut header = Vec::new();
        header.extend_from_slice(b"GGUF");
        header.extend_from_slice(&3u32.to_le_bytes());
        header.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&kv.count.to_le_bytes());
        header.extend_from_slice(&kv.bytes);

        // Tensor infos, with offsets into the (aligned) data section.
        let mut offset = 0u64;
        for (name, ne, _) in &tensors {
            put_string(&mut header, name);
            header.extend_from_slice(&(ne.len() as u32).to_le_bytes());
            for d in ne {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&GGML_TYPE_F32.to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offset = align(offset + ne.iter().product::<u64>() * 4);
        }
        header.resize(align(header.len() as u64) as usize, 0);
        out.write_all(&header)?;

        // Data.
        let mut rng = Normal::new(self.seed);
        let mut written = 0u64;
        for (_, ne, fill) in &tensors {
            let row = ne[0];
            let n = ne.iter().product::<u64>();
            let mut data = Vec::with_capacity(n as usize * 4);
            for i in 0..n {
                let value = match *fill {
                    Fill::Ones => 1.0,
                    Fill::Random => rng.next() * 0.02,
                    Fill::RandomZeroRow(zero) => {
                        // Draw anyway, so the other rows do not depend on `zero`.
                        let v = rng.next() * 0.02;
                        if i / row == zero { 0.0 } else { v }
                    }
                };
                data.extend_from_slice(&value.to_le_bytes());
            }
            data.resize(align(data.len() as u64) as usize, 0);
            written += data.len() as u64;
            out.write_all(&data)?;
        }
        debug_assert_eq!(written, offset);
        Ok(())
    }
}

/// How a tensor is filled.
#[derive(Clone, Copy)]
enum Fill {
    Ones,
    Random,
    /// Random, except for one all-zero row (index along the outer dimension).
    RandomZeroRow(u64),
}

fn align(n: u64) -> u64 {
    n.div_ceil(ALIGNMENT) * ALIGNMENT
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// The key/value section of a GGUF header.
#[derive(Default)]
struct Metadata {
    count: u64,
    bytes: Vec<u8>,
}

impl Metadata {
    fn key(&mut self, key: &str, kind: u32) {
        self.count += 1;
        put_string(&mut self.bytes, key);
        self.bytes.extend_from_slice(&kind.to_le_bytes());
    }

    fn u32(&mut self, key: &str, v: u32) {
        self.key(key, GGUF_TYPE_UINT32);
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    fn f32(&mut self, key: &str, v: f32) {
        self.key(key, GGUF_TYPE_FLOAT32);
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    fn bool(&mut self, key: &str, v: bool) {
        self.key(key, GGUF_TYPE_BOOL);
        self.bytes.push(u8::from(v));
    }

    fn string(&mut self, key: &str, v: &str) {
        self.key(key, GGUF_TYPE_STRING);
        put_string(&mut self.bytes, v);
    }

    fn array_header(&mut self, key: &str, kind: u32, len: usize) {
        self.key(key, GGUF_TYPE_ARRAY);
        self.bytes.extend_from_slice(&kind.to_le_bytes());
        self.bytes.extend_from_slice(&(len as u64).to_le_bytes());
    }

    fn string_array<'a>(&mut self, key: &str, values: impl ExactSizeIterator<Item = &'a str>) {
        self.array_header(key, GGUF_TYPE_STRING, values.len());
        for v in values {
            put_string(&mut self.bytes, v);
        }
    }

    fn f32_array(&mut self, key: &str, values: impl ExactSizeIterator<Item = f32>) {
        self.array_header(key, GGUF_TYPE_FLOAT32, values.len());
        for v in values {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn i32_array(&mut self, key: &str, values: impl ExactSizeIterator<Item = i32>) {
        self.array_header(key, GGUF_TYPE_INT32, values.len());
        for v in values {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Standard normal samples from splitmix64 through Box-Muller: small,
/// dependency-free and the same on every platform.
struct Normal {
    state: u64,
    spare: Option<f32>,
}

impl Normal {
    fn new(seed: u64) -> Self {
        Normal {
            state: seed,
            spare: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so the logarithm below is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f32 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare = Some((r * theta.sin()) as f32);
        (r * theta.cos()) as f32
    }
}

/// Writes a default [`TinyLlama`] as `dir/tiny-llama.gguf` and returns its
/// path.
pub fn write_tiny_llama(dir: &Path) -> io::Result<PathBuf> {
    let path = dir.join("tiny-llama.gguf");
    TinyLlama::default().write(&path)?;
    Ok(path)
}

/// `shared/models/stories260K.gguf` next to the workspace (or any folder
/// above this crate), when this machine has it.
pub fn stories260k() -> Option<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("shared").join("models").join("stories260K.gguf"))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_matches_the_python_script() {
        // 3 special + 256 bytes + "▁" + 94 printable + 11 words.
        assert_eq!(TinyLlama::n_vocab(), 365);
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let write = |seed| {
            let mut bytes = Vec::new();
            TinyLlama {
                seed,
                ..TinyLlama::default()
            }
            .write_to(&mut bytes)
            .unwrap();
            bytes
        };
        let (a, b, c) = (write(1), write(1), write(2));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(&a[..4], b"GGUF");
        assert_eq!(a.len() as u64 % ALIGNMENT, 0);
    }

    #[test]
    fn rejects_impossible_shapes() {
        let bad = TinyLlama {
            n_head: 3,
            ..TinyLlama::default()
        };
        assert_eq!(bad.check().unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
