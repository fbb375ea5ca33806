// Metal scalar and vector types on the host: half, bfloat16_t, uintN/intN/floatN, limits.
#pragma once
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;
typedef _Float16 half;
typedef half float16_t;

// Metal's half literals: 1.5h, 2h.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wliteral-suffix"
constexpr half operator"" h(long double x) { return half(x); }
constexpr half operator"" h(unsigned long long x) { return half(x); }
#pragma GCC diagnostic pop

namespace msl_emu {
template <class T>
struct is_num : std::integral_constant<bool, std::is_arithmetic<T>::value ||
                                                 std::is_same<T, _Float16>::value> {};

constexpr uint16_t float_to_bf16_bits(float f) {
  uint32_t u = __builtin_bit_cast(uint32_t, f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return uint16_t(u >> 16);
}
}  // namespace msl_emu

// Metal's bfloat: storage as 16 bits, arithmetic through float, rounded back (RNE).
struct bfloat16_t {
  uint16_t bits_;
  bfloat16_t() = default;
  template <class T, std::enable_if_t<msl_emu::is_num<T>::value, int> = 0>
  constexpr bfloat16_t(T v) : bits_(msl_emu::float_to_bf16_bits(float(v))) {}
  static constexpr bfloat16_t from_bits(uint16_t b) {
    bfloat16_t r{};
    r.bits_ = b;
    return r;
  }
  constexpr operator float() const { return __builtin_bit_cast(float, uint32_t(bits_) << 16); }
  template <class T>
  bfloat16_t& operator+=(T b) { return *this = bfloat16_t(float(*this) + float(b)); }
  template <class T>
  bfloat16_t& operator-=(T b) { return *this = bfloat16_t(float(*this) - float(b)); }
  template <class T>
  bfloat16_t& operator*=(T b) { return *this = bfloat16_t(float(*this) * float(b)); }
  template <class T>
  bfloat16_t& operator/=(T b) { return *this = bfloat16_t(float(*this) / float(b)); }
};
typedef bfloat16_t bfloat;

namespace msl_emu {
template <>
struct is_num<bfloat16_t> : std::false_type {};
template <class T>
struct is_mfloat : std::integral_constant<bool, std::is_same<T, float>::value ||
                                                    std::is_same<T, _Float16>::value ||
                                                    std::is_same<T, bfloat16_t>::value> {};
}  // namespace msl_emu

#define MSL_BF_ARITH(op)                                                              \
  constexpr bfloat16_t operator op(bfloat16_t a, bfloat16_t b) {                      \
    return bfloat16_t(float(a) op float(b));                                          \
  }                                                                                   \
  template <class T, std::enable_if_t<msl_emu::is_num<T>::value, int> = 0>           \
  constexpr float operator op(bfloat16_t a, T b) { return float(a) op float(b); }     \
  template <class T, std::enable_if_t<msl_emu::is_num<T>::value, int> = 0>           \
  constexpr float operator op(T a, bfloat16_t b) { return float(a) op float(b); }
#define MSL_BF_CMP(op)                                                                \
  constexpr bool operator op(bfloat16_t a, bfloat16_t b) { return float(a) op float(b); } \
  template <class T, std::enable_if_t<msl_emu::is_num<T>::value, int> = 0>           \
  constexpr bool operator op(bfloat16_t a, T b) { return float(a) op float(b); }      \
  template <class T, std::enable_if_t<msl_emu::is_num<T>::value, int> = 0>           \
  constexpr bool operator op(T a, bfloat16_t b) { return float(a) op float(b); }
MSL_BF_ARITH(+)
MSL_BF_ARITH(-)
MSL_BF_ARITH(*)
MSL_BF_ARITH(/)
MSL_BF_CMP(==)
MSL_BF_CMP(!=)
MSL_BF_CMP(<)
MSL_BF_CMP(<=)
MSL_BF_CMP(>)
MSL_BF_CMP(>=)
constexpr bfloat16_t operator-(bfloat16_t a) { return bfloat16_t::from_bits(a.bits_ ^ 0x8000u); }
constexpr bfloat16_t operator+(bfloat16_t a) { return a; }

namespace metal {
// Vectors: .x .y .z .w members, [] indexing, element-wise arithmetic (no swizzles).
template <class T, int N>
struct vec;
template <class T>
struct vec<T, 2> {
  T x, y;
  vec() = default;
  constexpr vec(T s) : x(s), y(s) {}
  constexpr vec(T a, T b) : x(a), y(b) {}
  template <class U>
  explicit constexpr vec(const vec<U, 2>& o) : x(T(o.x)), y(T(o.y)) {}
  T& operator[](int i) { return (&x)[i]; }
  const T& operator[](int i) const { return (&x)[i]; }
};
template <class T>
struct vec<T, 3> {
  T x, y, z;
  vec() = default;
  constexpr vec(T s) : x(s), y(s), z(s) {}
  constexpr vec(T a, T b, T c) : x(a), y(b), z(c) {}
  constexpr vec(vec<T, 2> a, T c) : x(a.x), y(a.y), z(c) {}
  template <class U>
  explicit constexpr vec(const vec<U, 3>& o) : x(T(o.x)), y(T(o.y)), z(T(o.z)) {}
  T& operator[](int i) { return (&x)[i]; }
  const T& operator[](int i) const { return (&x)[i]; }
};
template <class T>
struct vec<T, 4> {
  T x, y, z, w;
  vec() = default;
  constexpr vec(T s) : x(s), y(s), z(s), w(s) {}
  constexpr vec(T a, T b, T c, T d) : x(a), y(b), z(c), w(d) {}
  constexpr vec(vec<T, 3> a, T d) : x(a.x), y(a.y), z(a.z), w(d) {}
  constexpr vec(vec<T, 2> a, vec<T, 2> b) : x(a.x), y(a.y), z(b.x), w(b.y) {}
  template <class U>
  explicit constexpr vec(const vec<U, 4>& o) : x(T(o.x)), y(T(o.y)), z(T(o.z)), w(T(o.w)) {}
  T& operator[](int i) { return (&x)[i]; }
  const T& operator[](int i) const { return (&x)[i]; }
};

#define MSL_VEC_OP(op)                                                                  \
  template <class T, int N>                                                             \
  vec<T, N> operator op(vec<T, N> a, const vec<T, N>& b) {                              \
    for (int i = 0; i < N; i++) a[i] = a[i] op b[i];                                    \
    return a;                                                                           \
  }                                                                                     \
  template <class T, int N, class U, std::enable_if_t<!std::is_class<U>::value, int> = 0> \
  vec<T, N> operator op(vec<T, N> a, U b) {                                             \
    for (int i = 0; i < N; i++) a[i] = a[i] op T(b);                                    \
    return a;                                                                           \
  }                                                                                     \
  template <class T, int N, class U, std::enable_if_t<!std::is_class<U>::value, int> = 0> \
  vec<T, N> operator op(U a, vec<T, N> b) {                                             \
    for (int i = 0; i < N; i++) b[i] = T(a) op b[i];                                    \
    return b;                                                                           \
  }                                                                                     \
  template <class T, int N, class U>                                                    \
  vec<T, N>& operator op##=(vec<T, N>& a, const U& b) { return a = a op b; }
MSL_VEC_OP(+)
MSL_VEC_OP(-)
MSL_VEC_OP(*)
MSL_VEC_OP(/)
MSL_VEC_OP(%)
MSL_VEC_OP(&)
MSL_VEC_OP(|)
MSL_VEC_OP(^)
MSL_VEC_OP(<<)
MSL_VEC_OP(>>)
template <class T, int N>
vec<T, N> operator-(vec<T, N> a) {
  for (int i = 0; i < N; i++) a[i] = -a[i];
  return a;
}
template <class T, int N>
bool operator==(const vec<T, N>& a, const vec<T, N>& b) {
  for (int i = 0; i < N; i++)
    if (!(a[i] == b[i])) return false;
  return true;
}
template <class T, int N>
T dot(const vec<T, N>& a, const vec<T, N>& b) {
  T s = T(0);
  for (int i = 0; i < N; i++) s += a[i] * b[i];
  return s;
}

#define MSL_VEC_TYPEDEFS(T, name) \
  typedef vec<T, 2> name##2;      \
  typedef vec<T, 3> name##3;      \
  typedef vec<T, 4> name##4;
MSL_VEC_TYPEDEFS(uint, uint)
MSL_VEC_TYPEDEFS(int, int)
MSL_VEC_TYPEDEFS(float, float)
MSL_VEC_TYPEDEFS(half, half)
MSL_VEC_TYPEDEFS(bfloat16_t, bfloat)
MSL_VEC_TYPEDEFS(ushort, ushort)
MSL_VEC_TYPEDEFS(short, short)
MSL_VEC_TYPEDEFS(bool, bool)
MSL_VEC_TYPEDEFS(ulong, ulong)
MSL_VEC_TYPEDEFS(long, long)

template <class T>
struct numeric_limits : std::numeric_limits<T> {};
template <>
struct numeric_limits<half> {
  static constexpr bool is_specialized = true;
  static constexpr half infinity() { return half(__builtin_inff()); }
  static constexpr half quiet_NaN() { return half(__builtin_nanf("")); }
  static constexpr half max() { return half(65504.0f); }
  static constexpr half lowest() { return half(-65504.0f); }
  static constexpr half min() { return half(6.103515625e-05f); }
  static constexpr half epsilon() { return half(0.0009765625f); }
};
template <>
struct numeric_limits<bfloat16_t> {
  static constexpr bool is_specialized = true;
  static constexpr bfloat16_t infinity() { return bfloat16_t::from_bits(0x7f80); }
  static constexpr bfloat16_t quiet_NaN() { return bfloat16_t::from_bits(0x7fc0); }
  static constexpr bfloat16_t max() { return bfloat16_t::from_bits(0x7f7f); }
  static constexpr bfloat16_t lowest() { return bfloat16_t::from_bits(0xff7f); }
  static constexpr bfloat16_t min() { return bfloat16_t::from_bits(0x0080); }
  static constexpr bfloat16_t epsilon() { return bfloat16_t::from_bits(0x3c00); }
};

template <class T, class U>
inline T as_type(const U& x) {
  static_assert(sizeof(T) == sizeof(U), "as_type: sizes differ");
  return __builtin_bit_cast(T, x);
}
}  // namespace metal

using namespace metal;

// MLX's utils.h helpers visible to every custom kernel.
template <class U, bool F = msl_emu::is_mfloat<U>::value>
struct Limits {
  static constexpr U max = metal::numeric_limits<U>::max();
  static constexpr U min = metal::numeric_limits<U>::min();
  static constexpr U finite_max = metal::numeric_limits<U>::max();
  static constexpr U finite_min = metal::numeric_limits<U>::min();
};
template <class U>
struct Limits<U, true> {
  static constexpr U max = metal::numeric_limits<U>::infinity();
  static constexpr U min = -metal::numeric_limits<U>::infinity();
  static constexpr U finite_max = metal::numeric_limits<U>::max();
  static constexpr U finite_min = -metal::numeric_limits<U>::max();
};
template <>
struct Limits<bool, false> {
  static constexpr bool max = true;
  static constexpr bool min = false;
};
