/*
 * The C side of the c_api bench (benches/benches/metrics.rs): loops compiled by a C compiler,
 * so that the header's inline functions are measured as a C program gets them. Built by
 * benches/build.rs.
 */
#include "vigilo.h"

/* `iters` calls of the header's inline vigilo_local_counter_add(local, 1). The empty asm hides
 * the handle from the compiler on every iteration, as `black_box` does for the Rust handle the
 * bench compares with: its fields are loaded again each time, nothing is hoisted out of the
 * loop. */
void vigilo_bench_local_counter_add(const vigilo_local_counter *local, uint64_t iters) {
    for (uint64_t i = 0; i < iters; i++) {
        const vigilo_local_counter *l = local;
        __asm__ volatile("" : "+r"(l));
        vigilo_local_counter_add(l, 1);
    }
}

/* Whether the header's inline path was compiled (1) or the add is always a call (0). */
int vigilo_bench_local_counter_inline(void) {
    return VIGILO_LOCAL_COUNTER_INLINE;
}
