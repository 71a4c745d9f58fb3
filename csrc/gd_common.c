/* Parts of the core that do not depend on the element type. */
#include "gd_types.h"
#ifdef _OPENMP
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

int gd_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Fork safety. GNU libgomp keeps its worker pool across fork() in the child's memory, but not
 * its threads: the child's first multi-threaded region then waits forever for workers that do
 * not exist. So a child forked after this process ran a team of several threads runs every
 * region on one thread (correct, just not parallel). */
#ifdef _OPENMP
static volatile int team_started = 0;
static volatile int forked_after_team = 0;
static pthread_once_t fork_hook_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    if (team_started)
        forked_after_team = 1;
}

static void install_fork_hook(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}
#endif

int gd_team_size(int wanted)
{
#ifdef _OPENMP
    pthread_once(&fork_hook_once, install_fork_hook);
    if (forked_after_team)
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
    return forked_after_team;
#else
    return 0;
#endif
}
