// CPU emulation of the Metal Shading Language subset used by mx.fast.metal_kernel bodies.
// Included first by every generated translation unit (see compile.py).
#pragma once
#include "msl_types.h"
#include "msl_math.h"
#include "msl_sched.h"
#include "msl_simd.h"
#include "msl_launch.h"

// Address spaces are erased (a limit: address-space errors only show up on Metal).
#define device
#define constant
#define thread
#define threadgroup

// Every synchronising built-in carries its source line, so threads that meet at different
// barriers or simd operations (divergent control flow) are reported, not silently merged.
#define MSL_SITE ::msl_emu::Site{__LINE__}
#define threadgroup_barrier(...) threadgroup_barrier(MSL_SITE, ##__VA_ARGS__)
#define simdgroup_barrier(...) simdgroup_barrier(MSL_SITE, ##__VA_ARGS__)
#define simd_sum(...) simd_sum(MSL_SITE, __VA_ARGS__)
#define simd_product(...) simd_product(MSL_SITE, __VA_ARGS__)
#define simd_max(...) simd_max(MSL_SITE, __VA_ARGS__)
#define simd_min(...) simd_min(MSL_SITE, __VA_ARGS__)
#define simd_and(...) simd_and(MSL_SITE, __VA_ARGS__)
#define simd_or(...) simd_or(MSL_SITE, __VA_ARGS__)
#define simd_xor(...) simd_xor(MSL_SITE, __VA_ARGS__)
#define simd_prefix_exclusive_sum(...) simd_prefix_exclusive_sum(MSL_SITE, __VA_ARGS__)
#define simd_prefix_inclusive_sum(...) simd_prefix_inclusive_sum(MSL_SITE, __VA_ARGS__)
#define simd_prefix_exclusive_product(...) simd_prefix_exclusive_product(MSL_SITE, __VA_ARGS__)
#define simd_prefix_inclusive_product(...) simd_prefix_inclusive_product(MSL_SITE, __VA_ARGS__)
#define simd_shuffle(...) simd_shuffle(MSL_SITE, __VA_ARGS__)
#define simd_shuffle_down(...) simd_shuffle_down(MSL_SITE, __VA_ARGS__)
#define simd_shuffle_up(...) simd_shuffle_up(MSL_SITE, __VA_ARGS__)
#define simd_shuffle_xor(...) simd_shuffle_xor(MSL_SITE, __VA_ARGS__)
#define simd_shuffle_rotate_down(...) simd_shuffle_rotate_down(MSL_SITE, __VA_ARGS__)
#define simd_shuffle_rotate_up(...) simd_shuffle_rotate_up(MSL_SITE, __VA_ARGS__)
#define simd_shuffle_and_fill_down(...) simd_shuffle_and_fill_down(MSL_SITE, __VA_ARGS__)
#define simd_shuffle_and_fill_up(...) simd_shuffle_and_fill_up(MSL_SITE, __VA_ARGS__)
#define simd_broadcast(...) simd_broadcast(MSL_SITE, __VA_ARGS__)
#define simd_broadcast_first(...) simd_broadcast_first(MSL_SITE, __VA_ARGS__)
#define simd_any(...) simd_any(MSL_SITE, __VA_ARGS__)
#define simd_all(...) simd_all(MSL_SITE, __VA_ARGS__)
#define simd_ballot(...) simd_ballot(MSL_SITE, __VA_ARGS__)
#define simd_active_threads_mask() simd_active_threads_mask(MSL_SITE)
#define simd_is_first() simd_is_first(MSL_SITE)
