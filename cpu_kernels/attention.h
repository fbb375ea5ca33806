// Decode attention on the CPU (attention.cpp).
#pragma once

namespace gemma_cpu {

struct AttentionArgs {
  const float* q;            // [B, Hq, Lq, D] with strides q_strides (D's stride is 1)
  const float* k;            // [B, Hkv, S, D] with strides k_strides (D's stride is 1)
  const float* v;            // like k
  long q_strides[3], k_strides[3], v_strides[3];  // of the first 3 dims, in elements
  const bool* mask;          // [Bm, Lq, S] (true: attend) or null; Bm is 1 or B
  long mask_b_stride;        // 0 when Bm is 1
  float* out;                // [B, Hq, Lq, D]
  int B, Hq, Hkv, Lq, S, D;
  float scale;
};

// softmax(scale q k^T, masked) v for every query head: each KV head's keys and values are read
// once for all the query heads that share it.
void decode_attention(const AttentionArgs& a);

}  // namespace gemma_cpu
