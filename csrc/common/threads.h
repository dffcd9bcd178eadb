/* The one thread policy of every kernel: how many threads a parallel loop
 * gets (fastnn_threads), and SciPy's BLAS kept to one thread while fastnn
 * calls it (fastnn_blas_single_begin/end), so that BLAS and fastnn's OpenMP
 * loops never run two thread pools against each other on the same cores.
 * The policy's settings live in ONE struct owned by fastnn/threads.py (a
 * ctypes object); every kernel module points at it when it is imported
 * (common/threads.pxi), so set_num_threads reaches all of them at once.
 *
 * Why not OpenMP's own settings: another library in the process may have
 * loaded and configured the OpenMP runtime first (torch's wheel brings its own
 * libgomp and its threads spin by default), and the environment variables the
 * runtime reads at load are then ignored. So the count is decided here and
 * passed as num_threads= to every prange, and a loop below the work threshold
 * runs on one thread and never wakes the pool.
 *
 * Why adapt to the load: on cores that another process keeps busy, a team of
 * two stalls at every barrier on the member the scheduler preempted (a loaded
 * machine ran the MLP 3-5x slower with two threads than with one). Every
 * FASTNN_SAMPLE_NS the policy reads the CPU time the machine spent on our
 * CPUs (/proc/stat) minus our own (CLOCK_PROCESS_CPUTIME_ID); what others
 * used is not free for us. No other file decides thread counts.
 */
#ifndef FASTNN_COMMON_THREADS_H
#define FASTNN_COMMON_THREADS_H

#include <stddef.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__linux__)
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#define FASTNN_CAN_SAMPLE 1
#else
#define FASTNN_CAN_SAMPLE 0
#endif

/* Below this much work (multiply-adds, or element updates weighted by their
 * cost) a loop runs on one thread: waking and joining a team costs more than
 * it saves. Elementwise kernels weigh each element FASTNN_ELEMENT_COST. */
#define FASTNN_PARALLEL_MIN_WORK 262144.0
#define FASTNN_ELEMENT_COST 8.0
#define FASTNN_SAMPLE_NS 200000000LL /* 0.2 s: ten scheduler ticks of a CPU */

typedef void (*fastnn_blas_set_fn)(int);
typedef int (*fastnn_blas_get_fn)(void);

/* Layout shared with fastnn/threads.py (_State): change both together; `size`
 * is checked on attach. */
typedef struct {
    long long size;              /* sizeof(fastnn_thread_state), for the check */
    long long last_wall_ns;      /* previous sample: monotonic clock */
    long long last_self_ns;      /* our process's CPU time then */
    long long last_busy_ticks;   /* busy clock ticks of our CPUs then */
    fastnn_blas_set_fn blas_set; /* SciPy's openblas_set_num_threads, or NULL */
    fastnn_blas_get_fn blas_get;
    int cap;                     /* set_num_threads: at most this many */
    int adapt;                   /* 1: fewer when other processes keep CPUs busy */
    int forked;                  /* 1 in a child made by fork(): one thread */
    int now;                     /* what loops get now: 1..cap */
    int sampling;                /* one thread samples at a time */
    int pad_;
} fastnn_thread_state;

static fastnn_thread_state *fastnn_thread_policy = NULL;

static inline int fastnn_threads_attach(void *state, long long size)
{
    if (size != (long long)sizeof(fastnn_thread_state))
        return -1;
    fastnn_thread_policy = (fastnn_thread_state *)state;
    return 0;
}

#if FASTNN_CAN_SAMPLE
static inline long long fastnn_clock_ns(clockid_t clock)
{
    struct timespec t;
    if (clock_gettime(clock, &t) != 0)
        return -1;
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Busy clock ticks (everything but idle and iowait) summed over the CPUs we
 * may run on, and how many those are; -1 if /proc/stat is unreadable. */
static inline long long fastnn_busy_ticks(int *ncpu, long *running)
{
    static char buf[1 << 16];
    cpu_set_t mask;
    long long busy = 0;
    ssize_t got = 0, r;
    int fd, n = 0;
    char *p, *end;
    if (sched_getaffinity(0, sizeof mask, &mask) != 0)
        return -1;
    fd = open("/proc/stat", O_RDONLY);
    if (fd < 0)
        return -1;
    while (got < (ssize_t)sizeof buf - 1
           && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += r;
    close(fd);
    buf[got] = 0;
    /* The per-CPU lines come first ("cpuN user nice system idle iowait irq
     * softirq steal ..."); a line cut off by the buffer end is dropped. */
    p = buf;
    while (p < buf + got) {
        char *nl = p;
        while (*nl && *nl != '\n')
            nl++;
        if (!*nl)
            break;
        if (p[0] == 'c' && p[1] == 'p' && p[2] == 'u' && p[3] >= '0' && p[3] <= '9') {
            long id = strtol(p + 3, &end, 10);
            long long f[8] = {0};
            int i;
            for (i = 0; i < 8; i++)
                f[i] = strtoll(end, &end, 10);
            if (id >= 0 && id < CPU_SETSIZE && CPU_ISSET((int)id, &mask)) {
                busy += f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
                n++;
            }
        } else if (p[0] == 'p' && strncmp(p, "procs_running ", 14) == 0) {
            *running = strtol(p + 14, NULL, 10);
            break;  /* the last line this needs */
        }
        p = nl + 1;
    }
    *ncpu = n;
    return n > 0 ? busy : -1;
}

/* Threads of this process that are running or runnable now (state R), from
 * /proc/self/task/<tid>/stat; -1 if unreadable. */
static inline long fastnn_own_running(void)
{
    char path[300], buf[512];  /* "/proc/self/task/" + a d_name (at most 255) + "/stat" */
    struct dirent *e;
    long n = 0;
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        int fd;
        ssize_t got;
        char *close_paren;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        got = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (got <= 0)
            continue;
        buf[got] = 0;
        close_paren = strrchr(buf, ')');  /* the state follows the command name */
        if (close_paren != NULL && close_paren[1] == ' ' && close_paren[2] == 'R')
            n++;
    }
    closedir(d);
    return n;
}

/* Re-decide `now` from the CPU time others used since the last sample:
 * free CPUs = ours - others', rounded down unless within a quarter CPU of the
 * next whole one (idle noise); at least 1, at most cap. Erring low is cheap
 * (one thread where two fit loses at most half) and erring high is not (a
 * team of two spinning beside a busy process ran the MLP 13x slower:
 * bench/threads_check.py, threads=2!).
 *
 * The look-back alone mistakes a process that has just stopped for load (two
 * processes taking turns, as a benchmark driver runs them, each saw the other's
 * last 0.2 s and ran on one thread): so the count is also taken from the tasks
 * of other processes runnable right now (procs_running less our own running
 * threads), and the larger of the two estimates wins. A process that keeps a
 * CPU busy is runnable now too, so it still lowers the count. */
static inline void fastnn_threads_sample(fastnn_thread_state *s)
{
    int ncpu = 0, n;
    long long wall = fastnn_clock_ns(CLOCK_MONOTONIC);
    long long self = fastnn_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    long running = -1;
    long long busy = fastnn_busy_ticks(&ncpu, &running);
    long own = running >= 0 ? fastnn_own_running() : -1;
    long tck = sysconf(_SC_CLK_TCK);
    if (wall < 0 || self < 0 || busy < 0 || tck <= 0) {
        s->last_wall_ns = wall; /* unreadable: keep `now`, retry later */
        return;
    }
    if (s->last_wall_ns > 0 && s->last_busy_ticks > 0 && wall > s->last_wall_ns) {
        double dt = (double)(wall - s->last_wall_ns);
        double others = ((double)(busy - s->last_busy_ticks) * (1e9 / (double)tck)
                         - (double)(self - s->last_self_ns)) / dt;
        if (others < 0)
            others = 0;
        n = (int)((double)ncpu - others + 0.25);
        if (running >= 0 && own >= 0) {
            long others_now = running - own;
            int n_now = ncpu - (int)(others_now > 0 ? others_now : 0);
            if (n_now > n)
                n = n_now;
        }
        if (n > s->cap)
            n = s->cap;
        if (n < 1)
            n = 1;
        s->now = n;
    }
    s->last_wall_ns = wall;
    s->last_self_ns = self;
    s->last_busy_ticks = busy;
}
#endif

#if FASTNN_CAN_SAMPLE
/* While running on fewer threads than allowed, every 20 ms: if no task of
 * another process is runnable now, take the threads back at once instead of
 * at the next 0.2 s sample (a neighbour that has just stopped, its OpenMP
 * threads already asleep, is no load). One copy per module: each only
 * decides when to look. */
#define FASTNN_QUICK_NS 20000000LL
static long long fastnn_quick_check_ns = 0;

static inline void fastnn_threads_quick_check(fastnn_thread_state *s, long long t)
{
    int ncpu = 0;
    long running = -1, own;
    fastnn_quick_check_ns = t;
    if (fastnn_busy_ticks(&ncpu, &running) < 0 || running < 0)
        return;
    own = fastnn_own_running();
    if (own >= 0 && running - own <= 0)
        s->now = s->cap < ncpu ? s->cap : ncpu;
}
#endif

/* Threads for a parallel loop of `work` multiply-adds (or weighted element
 * updates). */
static inline int fastnn_threads(double work)
{
#ifdef _OPENMP
    fastnn_thread_state *s = fastnn_thread_policy;
    if (s == NULL || s->forked || work < FASTNN_PARALLEL_MIN_WORK || s->cap <= 1)
        return 1;
#if FASTNN_CAN_SAMPLE
    if (s->adapt) {
        long long t = fastnn_clock_ns(CLOCK_MONOTONIC);
        if (t - s->last_wall_ns >= FASTNN_SAMPLE_NS
                && !__atomic_exchange_n(&s->sampling, 1, __ATOMIC_ACQUIRE)) {
            fastnn_threads_sample(s);
            __atomic_store_n(&s->sampling, 0, __ATOMIC_RELEASE);
        } else if (s->now < s->cap && t - fastnn_quick_check_ns >= FASTNN_QUICK_NS
                   && !__atomic_exchange_n(&s->sampling, 1, __ATOMIC_ACQUIRE)) {
            fastnn_threads_quick_check(s, t);
            __atomic_store_n(&s->sampling, 0, __ATOMIC_RELEASE);
        }
    }
#endif
    return s->now < 1 ? 1 : (s->now > s->cap ? s->cap : s->now);
#else
    (void)work;
    return 1;
#endif
}

/* BLAS to one thread while fastnn calls it (fastnn's own loops hold the
 * threads); returns what to hand fastnn_blas_single_end to restore the user's
 * setting. A no-op where the BLAS could not be found (fastnn/threads.py). */
static inline int fastnn_blas_single_begin(void)
{
    fastnn_thread_state *s = fastnn_thread_policy;
    int old;
    if (s == NULL || s->blas_get == NULL || s->blas_set == NULL)
        return 0;
    old = s->blas_get();
    if (old != 1)
        s->blas_set(1);
    return old;
}

static inline void fastnn_blas_single_end(int saved)
{
    fastnn_thread_state *s = fastnn_thread_policy;
    if (saved > 1 && s != NULL && s->blas_set != NULL)
        s->blas_set(saved);
}

#endif
