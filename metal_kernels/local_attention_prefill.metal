// Causal sliding-window prefill attention, flash-style: a threadgroup of query rows walks
// only the key tiles inside its window, with an online softmax.
//
// Contract (reference: gemma_mlx.kernels.local_attention.dense_attention):
//   inputs   q [B, Hq, Lq, D] T at positions q_start..; k, v [B, Hkv, Lk, D] T at positions
//            k_start..; scalars q_start, k_start, window (int, 0 = causal only), scale (float).
//   output   out [B, Hq, Lq, D] T.
//   template T in {float, float16_t, bfloat16_t}; D in {64, 128, 256} (multiple of 32);
//            BQ = query rows per threadgroup (one simdgroup each); BK = keys per tile.
//   grid     (32, Lq, B * Hq); threadgroup (32, BQ, 1). The last group along y may hold
//            fewer rows (MLX dispatches non-uniform groups); every thread still takes part
//            in the tile loads and barriers.
// A query at position p sees keys in (p - window, p]. Key and value tiles are staged in
// threadgroup memory as float32 (2 * BK * D * 4 bytes); accumulation is float32.
constexpr int DPL = D / 32;
const int lane = thread_index_in_simdgroup;
const int sg = simdgroup_index_in_threadgroup;
const int rows = threads_per_threadgroup.y;  // BQ, or fewer in the edge group
const int nthreads = rows * 32;
const int tid = sg * 32 + lane;
const int hq = q_shape[1];
const int lq = q_shape[2];
const int hkv = k_shape[1];
const int lk = k_shape[2];
const int bh = threadgroup_position_in_grid.z;  // b * Hq + h
const int kv_head = (bh / hq) * hkv + (bh % hq) / (hq / hkv);
const int q_first = threadgroup_position_in_grid.y * BQ;
const int qi = q_first + sg;
const int qpos = q_start + qi;

// Keys this group needs: from the first row's window start to the last row's position.
int j_lo = 0;
if (window > 0) {
  j_lo = max(0, q_start + q_first - window + 1 - k_start);
}
const int j_hi = min(lk, q_start + q_first + rows - k_start);

float qv[DPL];
float acc[DPL];
const size_t q_base = (size_t(bh) * lq + qi) * D + lane * DPL;
for (int i = 0; i < DPL; i++) {
  qv[i] = static_cast<float>(q[q_base + i]) * scale;
  acc[i] = 0.0f;
}
float m = -INFINITY;
float l = 0.0f;

threadgroup float k_tile[BK * D];
threadgroup float v_tile[BK * D];
const size_t kv_base = size_t(kv_head) * lk * D;
for (int j0 = (j_lo / BK) * BK; j0 < j_hi; j0 += BK) {
  for (int idx = tid; idx < BK * D; idx += nthreads) {
    const int j = j0 + idx / D;
    const bool inside = j < lk;
    k_tile[idx] = inside ? static_cast<float>(k[kv_base + size_t(j0) * D + idx]) : 0.0f;
    v_tile[idx] = inside ? static_cast<float>(v[kv_base + size_t(j0) * D + idx]) : 0.0f;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (int t = 0; t < BK; t++) {
    const int kpos = k_start + j0 + t;
    if (j0 + t >= j_hi || kpos > qpos || (window > 0 && kpos <= qpos - window)) {
      continue;  // uniform across the simdgroup: one query row per simdgroup
    }
    float dot = 0.0f;
    for (int i = 0; i < DPL; i++) {
      dot += qv[i] * k_tile[t * D + lane * DPL + i];
    }
    const float s = simd_sum(dot);
    const float m_new = max(m, s);
    const float c = exp(m - m_new);
    const float p = exp(s - m_new);
    l = l * c + p;
    for (int i = 0; i < DPL; i++) {
      acc[i] = acc[i] * c + p * v_tile[t * D + lane * DPL + i];
    }
    m = m_new;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
}
for (int i = 0; i < DPL; i++) {
  out[q_base + i] = static_cast<T>(l > 0.0f ? acc[i] / l : 0.0f);
}
