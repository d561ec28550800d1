//! A BERT encoder (the MiniLM-L6 shape: 6 layers, 384 wide, 12 heads) read from a
//! safetensors file and run on the CPU, one sentence at a time.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

/// The numbers of the model, from its `config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub vocab_size: usize,
    pub layer_norm_eps: f32,
    pub hidden_act: String,
}

struct Linear {
    /// `[out][in]`, row-major, as stored.
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

pub struct Bert {
    config: Config,
    words: Vec<f32>,
    positions: Vec<f32>,
    token_types: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct TensorInfo {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

/// The f32 tensors of a safetensors file by name, with their shapes.
struct Tensors {
    data: Vec<u8>,
    start: usize,
    index: HashMap<String, TensorInfo>,
}

impl Tensors {
    fn read(path: &Path) -> Result<Self, String> {
        let data =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let bad = |why: &str| format!("{} is not a safetensors file: {why}", path.display());
        let header_len = data
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
            .ok_or_else(|| bad("too short"))?;
        let header = data
            .get(8..8usize.saturating_add(header_len))
            .ok_or_else(|| bad("header runs past the end"))?;
        let mut index: HashMap<String, serde_json::Value> =
            serde_json::from_slice(header).map_err(|e| bad(&e.to_string()))?;
        index.remove("__metadata__");
        let index = index
            .into_iter()
            .map(|(name, info)| {
                serde_json::from_value::<TensorInfo>(info)
                    .map(|info| (name, info))
                    .map_err(|e| bad(&e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            data,
            start: 8 + header_len,
            index,
        })
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let info = self
            .index
            .get(name)
            .ok_or_else(|| format!("the model has no tensor {name}"))?;
        if info.dtype != "F32" || info.shape != shape {
            return Err(format!(
                "tensor {name} is {} {:?}, expected F32 {shape:?}",
                info.dtype, info.shape
            ));
        }
        let [from, to] = info.data_offsets;
        let bytes = self
            .data
            .get(self.start + from..self.start + to)
            .filter(|b| b.len() == shape.iter().product::<usize>() * 4)
            .ok_or_else(|| format!("tensor {name} lies outside the file"))?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect())
    }

    fn linear(&self, prefix: &str, inputs: usize, outputs: usize) -> Result<Linear, String> {
        Ok(Linear {
            weight: self.get(&format!("{prefix}.weight"), &[outputs, inputs])?,
            bias: self.get(&format!("{prefix}.bias"), &[outputs])?,
            inputs,
            outputs,
        })
    }

    fn norm(&self, prefix: &str, width: usize) -> Result<Norm, String> {
        Ok(Norm {
            weight: self.get(&format!("{prefix}.weight"), &[width])?,
            bias: self.get(&format!("{prefix}.bias"), &[width])?,
        })
    }
}

impl Bert {
    pub fn load(weights: &Path, config: Config) -> Result<Self, String> {
        if config.hidden_act != "gelu" {
            return Err(format!("unsupported activation {}", config.hidden_act));
        }
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err("hidden_size must split evenly into the attention heads".into());
        }
        let t = Tensors::read(weights)?;
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let prefix = if t.index.contains_key("embeddings.word_embeddings.weight") {
            ""
        } else {
            "bert."
        };
        let layers = (0..config.num_hidden_layers)
            .map(|n| {
                let p = format!("{prefix}encoder.layer.{n}");
                Ok(Layer {
                    query: t.linear(&format!("{p}.attention.self.query"), h, h)?,
                    key: t.linear(&format!("{p}.attention.self.key"), h, h)?,
                    value: t.linear(&format!("{p}.attention.self.value"), h, h)?,
                    attention_out: t.linear(&format!("{p}.attention.output.dense"), h, h)?,
                    attention_norm: t.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                    intermediate: t.linear(&format!("{p}.intermediate.dense"), h, i)?,
                    output: t.linear(&format!("{p}.output.dense"), i, h)?,
                    output_norm: t.norm(&format!("{p}.output.LayerNorm"), h)?,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            words: t.get(
                &format!("{prefix}embeddings.word_embeddings.weight"),
                &[config.vocab_size, h],
            )?,
            positions: t.get(
                &format!("{prefix}embeddings.position_embeddings.weight"),
                &[config.max_position_embeddings, h],
            )?,
            token_types: t.get(
                &format!("{prefix}embeddings.token_type_embeddings.weight"),
                &[2, h],
            )?,
            embedding_norm: t.norm(&format!("{prefix}embeddings.LayerNorm"), h)?,
            layers,
            config,
        })
    }

    pub fn max_tokens(&self) -> usize {
        self.config.max_position_embeddings
    }

    pub fn width(&self) -> usize {
        self.config.hidden_size
    }

    /// The last layer's output for `ids` (one sentence, no padding): `[tokens][hidden]`.
    pub fn forward(&self, ids: &[u32]) -> Vec<f32> {
        let h = self.config.hidden_size;
        let n = ids.len().min(self.config.max_position_embeddings);
        let eps = self.config.layer_norm_eps;
        let mut x = vec![0f32; n * h];
        for (t, &id) in ids[..n].iter().enumerate() {
            let id = (id as usize).min(self.config.vocab_size - 1);
            let row = &mut x[t * h..(t + 1) * h];
            for (k, v) in row.iter_mut().enumerate() {
                *v = self.words[id * h + k] + self.positions[t * h + k] + self.token_types[k];
            }
        }
        layer_norm(&mut x, &self.embedding_norm, h, eps);
        for layer in &self.layers {
            let attended = self.attention(&x, n, layer);
            let mut y = layer.attention_out.apply(&attended, n);
            add(&mut y, &x);
            layer_norm(&mut y, &layer.attention_norm, h, eps);
            let mut inner = layer.intermediate.apply(&y, n);
            inner.iter_mut().for_each(|v| *v = gelu(*v));
            let mut out = layer.output.apply(&inner, n);
            add(&mut out, &y);
            layer_norm(&mut out, &layer.output_norm, h, eps);
            x = out;
        }
        x
    }

    /// Multi-head self-attention over all `n` tokens: the heads' outputs side by side.
    fn attention(&self, x: &[f32], n: usize, layer: &Layer) -> Vec<f32> {
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let d = h / heads;
        let q = layer.query.apply(x, n);
        let k = layer.key.apply(x, n);
        let v = layer.value.apply(x, n);
        let scale = 1.0 / (d as f32).sqrt();
        let mut out = vec![0f32; n * h];
        let mut scores = vec![0f32; n];
        for head in 0..heads {
            let off = head * d;
            for i in 0..n {
                let qi = &q[i * h + off..i * h + off + d];
                for (j, s) in scores.iter_mut().enumerate() {
                    let kj = &k[j * h + off..j * h + off + d];
                    *s = qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f32>() * scale;
                }
                softmax(&mut scores);
                let oi = &mut out[i * h + off..i * h + off + d];
                for (j, &p) in scores.iter().enumerate() {
                    let vj = &v[j * h + off..j * h + off + d];
                    for (o, &val) in oi.iter_mut().zip(vj) {
                        *o += p * val;
                    }
                }
            }
        }
        out
    }
}

impl Linear {
    /// `x · Wᵀ + b` for `rows` rows of `x`.
    fn apply(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows * self.outputs);
        for _ in 0..rows {
            out.extend_from_slice(&self.bias);
        }
        // SAFETY: x is rows × inputs, weight outputs × inputs (read transposed through its
        // strides), out rows × outputs; all row-major and sized as the strides say.
        unsafe {
            matrixmultiply::sgemm(
                rows,
                self.inputs,
                self.outputs,
                1.0,
                x.as_ptr(),
                self.inputs as isize,
                1,
                self.weight.as_ptr(),
                1,
                self.inputs as isize,
                1.0,
                out.as_mut_ptr(),
                self.outputs as isize,
                1,
            );
        }
        out
    }
}

fn add(to: &mut [f32], from: &[f32]) {
    to.iter_mut().zip(from).for_each(|(a, b)| *a += b);
}

fn layer_norm(x: &mut [f32], norm: &Norm, width: usize, eps: f32) {
    for row in x.chunks_exact_mut(width) {
        let mean = row.iter().sum::<f32>() / width as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for (k, v) in row.iter_mut().enumerate() {
            *v = (*v - mean) * inv * norm.weight[k] + norm.bias[k];
        }
    }
}

fn softmax(xs: &mut [f32]) {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in xs.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    xs.iter_mut().for_each(|v| *v /= sum);
}

/// The exact (erf) GELU that BERT was trained with.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_multiplies_by_the_transposed_weight() {
        let lin = Linear {
            weight: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], // 2 outputs × 3 inputs
            bias: vec![0.5, -1.0],
            inputs: 3,
            outputs: 2,
        };
        let out = lin.apply(&[1.0, 0.0, -1.0, 2.0, 1.0, 0.0], 2);
        assert_eq!(out, vec![-1.5, -3.0, 4.5, 12.0]);
    }

    #[test]
    fn softmax_and_gelu_have_their_known_values() {
        let mut xs = [0.0f32, 0.0];
        softmax(&mut xs);
        assert_eq!(xs, [0.5, 0.5]);
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert_eq!(gelu(0.0), 0.0);
    }
}
