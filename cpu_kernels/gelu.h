// Gemma's GeGLU activation on the CPU (gelu.cpp).
#pragma once

namespace gemma_cpu {

// out = gelu_tanh(g) * u over n float32 values: 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715
// g^3))) * u, in MLX's order of operations, with a vectorised tanh (a few ulp of tanhf).
void gelu_mul(const float* g, const float* u, float* out, long n);

}  // namespace gemma_cpu
