/* Parts of the core that do not depend on the element type. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* cpu_set_t and pthread_getaffinity_np, for gd_team_cpus */
#endif
#include "gd_types.h"
#ifdef _OPENMP
#include <dirent.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#endif

int64_t gd_n_params(const gd_net *net)
{
    int64_t l, n = 0;
    for (l = 0; l < net->n_layers; l++)
        n += (net->sizes[l] + 1) * net->sizes[l + 1];
    return n;
}

int64_t gd_shard_work_len(const gd_net *net)
{
    int64_t l, widest = 0;
    for (l = 0; l < net->n_layers; l++) {
        const int64_t len = (net->sizes[l] + 1) * net->sizes[l + 1];
        widest = len > widest ? len : widest;
    }
    return widest;
}

const char *gd_vector_isa(void)
{
#if GD_HAS_VECTOR_CLONES /* the same order of preference as GCC's clone resolver */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return "avx512f";
    if (__builtin_cpu_supports("avx2"))
        return "avx2";
    return "baseline";
#else
    return "baseline (built without clones)";
#endif
}

int gd_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int gd_team_cpus(int threads, int *ids, int cap)
{
#if defined(_OPENMP) && defined(__linux__)
    /* Where a team of this size runs, asked of its threads: the union of their affinity
     * masks. OpenMP's binding (OMP_PLACES, OMP_PROC_BIND=primary, GOMP_CPU_AFFINITY, places
     * that repeat a CPU) can put several threads on one CPU whatever the process's affinity
     * says, and the main thread's own mask shows only its place (libgomp bound it there at
     * load); the team's threads know. */
    cpu_set_t all;
    int failed = 0, cpu, n = 0;
    CPU_ZERO(&all);
#pragma omp parallel num_threads(gd_team_size(threads < 1 ? 1 : threads))
    {
        cpu_set_t mine;
        const int error = pthread_getaffinity_np(pthread_self(), sizeof mine, &mine);
#pragma omp critical(gd_team_cpus)
        {
            if (error != 0)
                failed = 1; /* more CPUs than cpu_set_t holds */
            else
                CPU_OR(&all, &all, &mine);
        }
    }
    if (failed)
        return 0;
    for (cpu = 0; cpu < CPU_SETSIZE && n < cap; cpu++)
        if (CPU_ISSET(cpu, &all))
            ids[n++] = cpu;
    return n;
#else
    (void)threads;
    (void)ids;
    (void)cap;
    return 0;
#endif
}

int gd_max_threads(void)
{
#ifdef _OPENMP
    /* OMP_THREAD_LIMIT caps every team below OMP_NUM_THREADS's count */
    const int wanted = omp_get_max_threads(), limit = omp_get_thread_limit();
    return wanted < limit ? wanted : limit;
#else
    return 1;
#endif
}

/* Fork safety. GNU libgomp keeps its worker pool across fork() in the child's memory, but not
 * its threads: the child's first multi-threaded region then waits forever for workers that do
 * not exist. The pool may be another library's (PyTorch's libgomp has the same soname, so the
 * process loads one libgomp and both use its pool), and libgomp does not say whether it has
 * one. So a child forked from a process that had threads besides the forking one (any pool:
 * OpenMP's, OpenBLAS's, Python's) or had run a gdcore team runs every region on one thread:
 * correct (the same bits), just not parallel. A child of a single-threaded process is free.
 * The handler is installed when the core is loaded, before any fork it must see. */
#ifdef _OPENMP
static volatile int team_started = 0;
static volatile int parent_threaded = 0;
static volatile int limited_by_fork = 0;

/* Threads of this process (Linux: /proc/self/task), or -1 where that cannot be read. */
static int process_threads(void)
{
    DIR *dir = opendir("/proc/self/task");
    const struct dirent *entry;
    int n = 0;
    if (dir == NULL)
        return -1;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.')
            n++;
    closedir(dir);
    return n;
}

static void on_fork_prepare(void)
{
    parent_threaded = team_started || process_threads() != 1;
}

static void on_fork_child(void)
{
    if (parent_threaded)
        limited_by_fork = 1;
}

__attribute__((constructor)) static void install_fork_hook(void)
{
    pthread_atfork(on_fork_prepare, NULL, on_fork_child);
}
#endif

int gd_team_size(int wanted)
{
#ifdef _OPENMP
    if (limited_by_fork)
        return 1;
    if (wanted > 1)
        team_started = 1;
    return wanted;
#else
    (void)wanted;
    return 1;
#endif
}

int gd_fork_limited(void)
{
#ifdef _OPENMP
    return limited_by_fork;
#else
    return 0;
#endif
}
