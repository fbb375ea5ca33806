// Decode attention straight over a ring-buffer KV cache (no reordering).
//
// Contract (reference: gemma_mlx.kernels.ring_decode.ring_decode_reference):
//   inputs   q [B, Hq, Lq, D] T; k, v [B, Hkv, S, D] T, S filled slots of a ring of
//            ring_size slots; scalars offset (tokens written, int), window (int, 0 = none),
//            ring_size (int), scale (float).
//   output   out [B, Hq, Lq, D] T.
//   template T in {float, float16_t, bfloat16_t}; D in {64, 128, 256} (multiple of 32);
//            NSG = simdgroups per threadgroup.
//   grid     (32, NSG, B * Hq * Lq); threadgroup (32, NSG, 1).
// Query iq sits at position offset - Lq + iq. Slot j holds position
// last - ((last - j) mod ring_size), last = offset - 1; it is visible when that position is
// <= the query's and > query - window. Each simdgroup walks every NSG-th slot with an online
// softmax over its lanes' D/32 elements; the simdgroups' partial results merge through
// threadgroup memory. Accumulation is float32.
constexpr int DPL = D / 32;  // elements per lane
const int lane = thread_index_in_simdgroup;
const int sg = simdgroup_index_in_threadgroup;
const int row = threadgroup_position_in_grid.z;  // (b * Hq + h) * Lq + iq
const int lq = q_shape[2];
const int hq = q_shape[1];
const int hkv = k_shape[1];
const int slots = k_shape[2];
const int iq = row % lq;
const int h = (row / lq) % hq;
const int b = row / (lq * hq);
const int kv_head = b * hkv + h / (hq / hkv);
const int last = offset - 1;
const int qpos = offset - lq + iq;

float qv[DPL];
float acc[DPL];
for (int i = 0; i < DPL; i++) {
  qv[i] = static_cast<float>(q[row * D + lane * DPL + i]) * scale;
  acc[i] = 0.0f;
}
float m = -INFINITY;
float l = 0.0f;
for (int j = sg; j < slots; j += NSG) {
  const int pos = last - ((last - j) % ring_size + ring_size) % ring_size;
  if (pos > qpos || (window > 0 && pos <= qpos - window)) {
    continue;  // uniform across the simdgroup: same slot for every lane
  }
  const size_t base = (size_t(kv_head) * slots + j) * D + lane * DPL;
  float dot = 0.0f;
  for (int i = 0; i < DPL; i++) {
    dot += qv[i] * static_cast<float>(k[base + i]);
  }
  const float s = simd_sum(dot);
  const float m_new = max(m, s);
  const float c = exp(m - m_new);
  const float p = exp(s - m_new);
  l = l * c + p;
  for (int i = 0; i < DPL; i++) {
    acc[i] = acc[i] * c + p * static_cast<float>(v[base + i]);
  }
  m = m_new;
}

threadgroup float part_m[NSG];
threadgroup float part_l[NSG];
threadgroup float part_o[NSG * D];
if (lane == 0) {
  part_m[sg] = m;
  part_l[sg] = l;
}
for (int i = 0; i < DPL; i++) {
  part_o[sg * D + lane * DPL + i] = acc[i];
}
threadgroup_barrier(mem_flags::mem_threadgroup);

float m_all = -INFINITY;
for (int s = 0; s < NSG; s++) {
  m_all = max(m_all, part_m[s]);
}
float l_all = 0.0f;
for (int s = 0; s < NSG; s++) {
  l_all += part_l[s] * (part_m[s] == -INFINITY ? 0.0f : exp(part_m[s] - m_all));
}
for (int d = sg * 32 + lane; d < D; d += NSG * 32) {
  float o = 0.0f;
  for (int s = 0; s < NSG; s++) {
    if (part_m[s] != -INFINITY) {
      o += part_o[s * D + d] * exp(part_m[s] - m_all);
    }
  }
  out[row * D + d] = static_cast<T>(l_all > 0.0f ? o / l_all : 0.0f);
}
