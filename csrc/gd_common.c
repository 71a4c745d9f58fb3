/* Parts of the core that do not depend on the element type. */
#include "gd_types.h"
#ifdef _OPENMP
#include <omp.h>
#endif

int64_t gd_n_params(const gd_net *net)
{
    int64_t l, n = 0;
    for (l = 0; l < net->n_layers; l++)
        n += (net->sizes[l] + 1) * net->sizes[l + 1];
    return n;
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
