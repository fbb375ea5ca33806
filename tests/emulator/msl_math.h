// Metal math built-ins (fast:: and precise:: are IEEE here), atomics and MLX index helpers.
#pragma once
#include "msl_types.h"

namespace metal {
template <class T>
using if_float = std::enable_if_t<msl_emu::is_mfloat<T>::value, int>;

// Each function computes in float (float/half/bfloat16_t arguments) and rounds to T.
#define MSL_UNARY(name, impl) \
  template <class T, if_float<T> = 0> \
  inline T name(T x) { return T(impl(float(x))); }
#define MSL_BINARY(name, impl) \
  template <class T, if_float<T> = 0> \
  inline T name(T x, T y) { return T(impl(float(x), float(y))); }
MSL_UNARY(exp, std::exp)
MSL_UNARY(exp2, std::exp2)
MSL_UNARY(log, std::log)
MSL_UNARY(log2, std::log2)
MSL_UNARY(log10, std::log10)
MSL_UNARY(log1p, std::log1p)
MSL_UNARY(sqrt, std::sqrt)
MSL_UNARY(tanh, std::tanh)
MSL_UNARY(sinh, std::sinh)
MSL_UNARY(cosh, std::cosh)
MSL_UNARY(sin, std::sin)
MSL_UNARY(cos, std::cos)
MSL_UNARY(tan, std::tan)
MSL_UNARY(asin, std::asin)
MSL_UNARY(acos, std::acos)
MSL_UNARY(atan, std::atan)
MSL_UNARY(erf, std::erf)
MSL_UNARY(fabs, std::fabs)
MSL_UNARY(floor, std::floor)
MSL_UNARY(ceil, std::ceil)
MSL_UNARY(round, std::round)
MSL_UNARY(rint, std::rint)
MSL_UNARY(trunc, std::trunc)
MSL_BINARY(pow, std::pow)
MSL_BINARY(powr, std::pow)
MSL_BINARY(atan2, std::atan2)
MSL_BINARY(fmod, std::fmod)
MSL_BINARY(copysign, std::copysign)
MSL_BINARY(fmax, std::fmax)
MSL_BINARY(fmin, std::fmin)
template <class T, if_float<T> = 0>
inline T exp10(T x) { return T(std::pow(10.0f, float(x))); }
template <class T, if_float<T> = 0>
inline T rsqrt(T x) { return T(1.0f / std::sqrt(float(x))); }
template <class T, if_float<T> = 0>
inline T fract(T x) { return T(float(x) - std::floor(float(x))); }
template <class T, if_float<T> = 0>
inline T fma(T a, T b, T c) { return T(std::fma(float(a), float(b), float(c))); }
template <class T, if_float<T> = 0>
inline T sign(T x) { return T(x > T(0) ? 1.0f : x < T(0) ? -1.0f : 0.0f); }
template <class T, if_float<T> = 0>
inline T saturate(T x) { return T(std::fmin(std::fmax(float(x), 0.0f), 1.0f)); }
template <class T, if_float<T> = 0>
inline T mix(T x, T y, T a) { return T(float(x) + (float(y) - float(x)) * float(a)); }
template <class T, if_float<T> = 0>
inline T step(T edge, T x) { return T(float(x) < float(edge) ? 0.0f : 1.0f); }
template <class T, if_float<T> = 0>
inline bool isnan(T x) { return std::isnan(float(x)); }
template <class T, if_float<T> = 0>
inline bool isinf(T x) { return std::isinf(float(x)); }
template <class T, if_float<T> = 0>
inline bool isfinite(T x) { return std::isfinite(float(x)); }
template <class T, if_float<T> = 0>
inline bool signbit(T x) { return std::signbit(float(x)); }
template <class T,
          std::enable_if_t<std::is_integral<T>::value || msl_emu::is_mfloat<T>::value, int> = 0>
inline T abs(T x) { return x < T(0) ? T(-x) : x; }
// max/min propagate NaN (Metal's fmax semantics would drop it) so poison stays visible.
template <class T>
inline T max(T a, T b) { return (a > b || a != a) ? a : b; }
template <class T>
inline T min(T a, T b) { return (a < b || a != a) ? a : b; }
template <class T>
inline T divide(T x, T y) { return x / y; }
template <class T>
inline T clamp(T x, T lo, T hi) { return min(max(x, lo), hi); }
template <class T>
inline T select(T a, T b, bool c) { return c ? b : a; }
template <class T, std::enable_if_t<std::is_integral<T>::value, int> = 0>
inline T popcount(T x) { return T(__builtin_popcountll((unsigned long long)x)); }
template <class T, int N>
vec<T, N> max(vec<T, N> a, const vec<T, N>& b) {
  for (int i = 0; i < N; i++) a[i] = max(a[i], b[i]);
  return a;
}
template <class T, int N>
vec<T, N> min(vec<T, N> a, const vec<T, N>& b) {
  for (int i = 0; i < N; i++) a[i] = min(a[i], b[i]);
  return a;
}

namespace fast {
using metal::cos; using metal::exp; using metal::exp2; using metal::log; using metal::log2;
using metal::max; using metal::min; using metal::pow; using metal::powr; using metal::rsqrt;
using metal::sin; using metal::sqrt; using metal::tanh; using metal::fabs; using metal::abs;
using metal::fmax; using metal::fmin; using metal::clamp; using metal::divide;
}  // namespace fast
namespace precise {
using metal::cos; using metal::exp; using metal::exp2; using metal::log; using metal::log2;
using metal::max; using metal::min; using metal::pow; using metal::powr; using metal::rsqrt;
using metal::sin; using metal::sqrt; using metal::tanh; using metal::fabs; using metal::abs;
using metal::fmax; using metal::fmin; using metal::clamp; using metal::divide;
}  // namespace precise

// Atomics: trivially atomic, every GPU thread runs on one OS thread.
enum memory_order {
  memory_order_relaxed, memory_order_acquire, memory_order_release, memory_order_acq_rel,
  memory_order_seq_cst
};
template <class T>
struct atomic {
  T value_;
};
typedef atomic<int> atomic_int;
typedef atomic<uint> atomic_uint;
typedef atomic<float> atomic_float;
typedef atomic<bool> atomic_bool;
template <class A>
using atomic_value_t = std::remove_cv_t<decltype(std::declval<A&>().value_)>;
template <class A, class U>
inline void atomic_store_explicit(A* o, U v, memory_order) { o->value_ = atomic_value_t<A>(v); }
template <class A>
inline atomic_value_t<A> atomic_load_explicit(A* o, memory_order) { return o->value_; }
#define MSL_ATOMIC_RMW(name, expr)                                              \
  template <class A, class U>                                                   \
  inline atomic_value_t<A> name(A* o, U v_, memory_order) {                     \
    atomic_value_t<A> old = o->value_, v = atomic_value_t<A>(v_);               \
    o->value_ = atomic_value_t<A>(expr);                                        \
    return old;                                                                 \
  }
MSL_ATOMIC_RMW(atomic_exchange_explicit, v)
MSL_ATOMIC_RMW(atomic_fetch_add_explicit, old + v)
MSL_ATOMIC_RMW(atomic_fetch_sub_explicit, old - v)
MSL_ATOMIC_RMW(atomic_fetch_max_explicit, old > v ? old : v)
MSL_ATOMIC_RMW(atomic_fetch_min_explicit, old < v ? old : v)
MSL_ATOMIC_RMW(atomic_fetch_and_explicit, old & v)
MSL_ATOMIC_RMW(atomic_fetch_or_explicit, old | v)
MSL_ATOMIC_RMW(atomic_fetch_xor_explicit, old ^ v)
template <class A, class U>
inline bool atomic_compare_exchange_weak_explicit(A* o, atomic_value_t<A>* expected, U desired,
                                                  memory_order, memory_order) {
  if (o->value_ == *expected) {
    o->value_ = atomic_value_t<A>(desired);
    return true;
  }
  *expected = o->value_;
  return false;
}
}  // namespace metal

// MLX utils.h helpers.
#define METAL_FUNC inline
#define MLX_MTL_PRAGMA_UNROLL
template <typename T, typename U>
inline T ceildiv(T N, U M) {
  return (N + M - 1) / M;
}
template <typename IdxT = int64_t>
inline IdxT elem_to_loc(IdxT elem, const int* shape, const int64_t* strides, int ndim) {
  IdxT loc = 0;
  for (int i = ndim - 1; i >= 0 && elem > 0; --i) {
    loc += (elem % shape[i]) * IdxT(strides[i]);
    elem /= shape[i];
  }
  return loc;
}
template <typename IdxT = int64_t>
inline IdxT elem_to_loc(uint3 elem, const int* shape, const int64_t* strides, int ndim) {
  IdxT loc = elem.x * IdxT(strides[ndim - 1]) + elem.y * IdxT(strides[ndim - 2]);
  for (int d = ndim - 3; d >= 0; --d) {
    loc += (elem.z % shape[d]) * IdxT(strides[d]);
    elem.z /= shape[d];
  }
  return loc;
}
