/* Parts of the core that do not depend on the element type. */
#include "gd_types.h"
#ifdef _OPENMP
#include <dirent.h>
#include <omp.h>
#include <pthread.h>
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

int gd_num_procs(void)
{
#ifdef _OPENMP
    /* the process's CPUs: its affinity now, or with OMP_PROC_BIND its affinity before libgomp
     * bound the initial thread to one place (that thread's own mask then shows one CPU) */
    return omp_get_num_procs();
#else
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
