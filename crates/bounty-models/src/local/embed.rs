//! Embeddings on an inference thread: one llama.cpp context with
//! embeddings on and the model's pooling, reused across requests.
//!
//! # Batching
//!
//! Texts are decoded several at a time: each text is its own sequence (ids
//! 0, 1, …) with positions from 0, so llama.cpp's attention mask keeps them
//! apart and pools each one separately. One decode holds at most `batch`
//! texts whose tokens together fit the context; the texts are taken in
//! order, and a text that does not fit starts the next decode. The context
//! is one micro-batch (`n_ubatch = n_ctx`), because llama.cpp pools per
//! micro-batch, and its KV cache is unified, so one text may use all of it.
//!
//! # Truncation
//!
//! A text is tokenized as llama.cpp's own embedding tool does (the model's
//! special tokens added: BOS, and EOS/SEP where the model asks for them).
//! One that is longer than the context keeps its first `n_ctx` tokens: the
//! start of a chunk is what it is about, and a retrieval index must not
//! fail on one long document. The vector then stands for that prefix only.
//!
//! # Output
//!
//! Every vector is L2-normalised, so cosine similarity is a dot product.
//! A vector that llama.cpp returns with a NaN or infinite component is an
//! error, not a silent zero.

use std::ops::Range;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaPoolingType;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;

use super::{Shared, cancelled_error, local};
use crate::embedding_config::Pooling;
use crate::error::ProviderError;

/// An inference thread's embeddings context.
pub(super) struct EmbeddingContext<'m> {
    shared: &'m Shared,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    /// Tokens one decode holds (and one text keeps).
    capacity: usize,
    /// Texts one decode holds.
    max_texts: usize,
}

fn pooling_type(pooling: Pooling) -> LlamaPoolingType {
    match pooling {
        Pooling::Mean => LlamaPoolingType::Mean,
        Pooling::Cls => LlamaPoolingType::Cls,
        Pooling::Last => LlamaPoolingType::Last,
    }
}

impl<'m> EmbeddingContext<'m> {
    pub(super) fn new(shared: &'m Shared) -> Result<Self, ProviderError> {
        let setup = shared.embedding;
        let params = shared
            .context_params()
            .with_n_batch(shared.n_ctx)
            .with_n_ubatch(shared.n_ctx)
            .with_n_seq_max(setup.batch)
            .with_kv_unified(true)
            .with_embeddings(true)
            .with_pooling_type(pooling_type(setup.pooling));
        let ctx = shared.new_context(params)?;
        let capacity = ctx.n_ubatch().min(ctx.n_ctx()).max(1) as usize;
        Ok(EmbeddingContext {
            shared,
            ctx,
            batch: LlamaBatch::new(capacity, 1),
            capacity,
            max_texts: setup.batch.max(1) as usize,
        })
    }

    pub(super) fn embed(
        &mut self,
        texts: &[String],
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Vec<Vec<f32>>, ProviderError> {
        let vocab = self.shared.model.vocab();
        let mut tokenized: Vec<Vec<LlamaToken>> = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let mut tokens = Vec::new();
            vocab.tokenize_into(text.as_bytes(), &mut tokens, true, false);
            if tokens.is_empty() {
                return Err(ProviderError::Local(format!("text {i} has no tokens to embed")));
            }
            if tokens.len() > self.capacity {
                tracing::debug!(
                    text = i,
                    tokens = tokens.len(),
                    kept = self.capacity,
                    "embedding text truncated to the context"
                );
                tokens.truncate(self.capacity);
            }
            tokenized.push(tokens);
        }

        let lengths: Vec<usize> = tokenized.iter().map(Vec::len).collect();
        let mut out = Vec::with_capacity(texts.len());
        for group in pack(&lengths, self.capacity, self.max_texts) {
            if cancelled() {
                return Err(cancelled_error());
            }
            self.ctx.clear_kv_cache();
            self.batch.clear();
            for (seq, tokens) in tokenized[group.clone()].iter().enumerate() {
                let seq = seq as i32;
                for (pos, &token) in tokens.iter().enumerate() {
                    self.batch
                        .add(token, pos as i32, &[seq], true)
                        .map_err(|e| local("batch", e))?;
                }
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| local("embedding failed", e))?;
            for seq in 0..group.len() {
                let embedding = self
                    .ctx
                    .embeddings_seq_ith(seq as i32)
                    .map_err(|e| local("embedding failed", e))?;
                if embedding.iter().any(|x| !x.is_finite()) {
                    return Err(ProviderError::Local(
                        "the model produced a non-finite embedding".into(),
                    ));
                }
                out.push(bounty_core::vector::normalized(embedding));
            }
        }
        Ok(out)
    }
}

/// Consecutive groups of texts, in order, each with at most `max_texts`
/// texts and at most `capacity` tokens in all. Every length must be at
/// most `capacity` (texts are truncated first).
fn pack(lengths: &[usize], capacity: usize, max_texts: usize) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut tokens) = (0, 0);
    for (i, &len) in lengths.iter().enumerate() {
        if i > start && (tokens + len > capacity || i - start >= max_texts) {
            groups.push(start..i);
            start = i;
            tokens = 0;
        }
        tokens += len;
    }
    if start < lengths.len() {
        groups.push(start..lengths.len());
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::pack;

    #[test]
    fn packing_keeps_order_and_both_limits() {
        assert_eq!(pack(&[], 10, 4), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(pack(&[3, 3, 3, 3], 10, 4), vec![0..3, 3..4]);
        assert_eq!(pack(&[1, 1, 1, 1, 1], 10, 2), vec![0..2, 2..4, 4..5]);
        assert_eq!(pack(&[10, 1, 9, 1], 10, 8), vec![0..1, 1..3, 3..4]);
        assert_eq!(pack(&[4], 4, 1), vec![0..1]);
    }
}
