// struct sched_attr as sched_setattr and sched_getattr take it. glibc declares
// none, and <linux/sched/types.h> clashes with <sched.h> over sched_param.
// Up to `period` is the first version (SCHED_ATTR_VER0 bytes); then the
// utilization clamps, and room for a larger caller's tail, which must be zero.
#include <stdint.h>

struct attr {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
    uint8_t extra[16];
};

#define SCHED_ATTR_VER0 48
