/* Whole-network passes and the mini-batch loop (see gd_train.h for the threading model).
 * Compiled once per element type (gd_real.h). */
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "gd_real.h"
#include "gd_act.h"
#include "gd_dense.h"
#include "gd_loss.h"
#include "gd_optim.h"
#include "gd_train.h"

enum {
    GD_MAX_LAYERS = 64,          /* the Python side rejects deeper networks */
    GD_MAX_SHARDS = 32,          /* row shards per batch, at most */
    GD_MIN_SHARD_ROWS = 32,      /* below this a GEMM's packing overhead dominates */
    GD_TILE = 128,               /* dW tiles are GD_TILE × GD_TILE blocks of W */
    GD_UPDATE_CHUNK = 1 << 14,   /* parameters per optimizer work item */
    GD_PREDICT_ROWS = 128        /* rows per forward chunk in gd_forward */
};
/* A shard should carry at least this many FLOPs, or a thread costs more than it saves. */
#define GD_MIN_SHARD_FLOPS 262144.0
/* Each extra thread must get at least this much of the batch's work: a barrier costs about a
 * microsecond, and several microseconds more when the machine is busy. */
#define GD_MIN_THREAD_FLOPS 2.0e6

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

/* Where each layer's W and b sit in the flat parameter buffer. */
static void param_views(const gd_net *net, gd_real *params, gd_real **W, gd_real **b)
{
    gd_real *p = params;
    int64_t l;
    for (l = 0; l < net->n_layers; l++) {
        W[l] = p;
        p += net->sizes[l] * net->sizes[l + 1];
        b[l] = p;
        p += net->sizes[l + 1];
    }
}

/* Rows per shard: fixed by B and the layer sizes, never by the thread count (determinism). */
/* Forward and backward GEMM FLOPs per row of a batch. */
static double flops_per_row(const gd_net *net)
{
    double flops = 0;
    int64_t l;
    for (l = 0; l < net->n_layers; l++)
        flops += 6.0 * (double)net->sizes[l] * (double)net->sizes[l + 1];
    return flops;
}

static int64_t shard_rows(const gd_net *net, int64_t B)
{
    int64_t rows;
    rows = (int64_t)(GD_MIN_SHARD_FLOPS / MAX(flops_per_row(net), 1.0)) + 1;
    rows = MAX(rows, GD_MIN_SHARD_ROWS);
    rows = MAX(rows, CEIL_DIV(B, GD_MAX_SHARDS));
    return MIN(rows, B);
}

/* Scratch of one training batch of B rows, carved from the caller's workspace. */
typedef struct {
    gd_real *Xb;                 /* gathered input rows, B × sizes[0] */
    gd_real *Z[GD_MAX_LAYERS];   /* pre-activations, B × sizes[l+1] */
    gd_real *A[GD_MAX_LAYERS];   /* activations */
    gd_real *D[GD_MAX_LAYERS];   /* ∂loss/∂A, turned into ∂loss/∂Z in place */
    gd_real *row_loss;           /* B */
    gd_real *tile_penalty;       /* one partial penalty per dW tile, summed in tile order */
    int64_t len;
} train_scratch;

static int64_t n_tiles(const gd_net *net, int64_t l)
{
    return CEIL_DIV(net->sizes[l], GD_TILE) * CEIL_DIV(net->sizes[l + 1], GD_TILE);
}

static void carve_scratch(const gd_net *net, int64_t B, gd_real *work, train_scratch *s)
{
    gd_real *p = work;
    int64_t l, tiles = 0;
    s->Xb = p;
    p += B * net->sizes[0];
    for (l = 0; l < net->n_layers; l++) {
        const int64_t size = B * net->sizes[l + 1];
        s->Z[l] = p;
        s->A[l] = p + size;
        s->D[l] = p + 2 * size;
        p += 3 * size;
        tiles += n_tiles(net, l);
    }
    s->row_loss = p;
    p += B;
    s->tile_penalty = p;
    p += tiles;
    s->len = (int64_t)(p - work);
}

int64_t GD(gd_train_workspace_len)(const gd_net *net, int64_t batch_rows)
{
    train_scratch s;
    if (net->n_layers < 1 || net->n_layers > GD_MAX_LAYERS || batch_rows < 1)
        return -1;
    carve_scratch(net, batch_rows, NULL, &s);
    return s.len;
}

static int64_t widest_hidden(const gd_net *net)
{
    int64_t l, widest = 1;
    for (l = 1; l < net->n_layers; l++)
        widest = MAX(widest, net->sizes[l]);
    return widest;
}

int64_t GD(gd_forward_workspace_len)(const gd_ctx *ctx, const gd_net *net)
{
    return (int64_t)MAX(ctx->n_threads, 1) * 2 * GD_PREDICT_ROWS * widest_hidden(net);
}

gd_status GD(gd_forward)(const gd_ctx *ctx, const gd_net *net, const gd_real *params, int64_t n,
                         const gd_real *X, gd_real *out, gd_real *work, int64_t work_len)
{
    const int64_t L = net->n_layers, n_chunks = CEIL_DIV(n, GD_PREDICT_ROWS);
    const int64_t slice = 2 * GD_PREDICT_ROWS * widest_hidden(net);
    gd_real *W[GD_MAX_LAYERS], *b[GD_MAX_LAYERS];
    const int n_threads = (int)MAX(1, MIN((int64_t)ctx->n_threads, n_chunks));
    int64_t chunk;

    if (L < 1 || L > GD_MAX_LAYERS || n < 0)
        return GD_ERR_ARG;
    if (work_len < n_threads * slice)
        return GD_ERR_WORKSPACE;
    param_views(net, (gd_real *)params, W, b);

#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
    for (chunk = 0; chunk < n_chunks; chunk++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        gd_real *ping = work + tid * slice, *pong = ping + slice / 2, *buf;
        const int64_t r0 = chunk * GD_PREDICT_ROWS, rows = MIN(GD_PREDICT_ROWS, n - r0);
        const gd_real *in = X + r0 * net->sizes[0];
        int64_t l;
        for (l = 0; l < L; l++) {
            const int64_t n_in = net->sizes[l], n_out = net->sizes[l + 1];
            gd_real *dst = l == L - 1 ? out + r0 * n_out : ping;
            /* inference keeps only A: Z and A share the buffer */
            GD(gd_dense_forward)(ctx, rows, n_in, n_out, in, n_in, W[l], b[l], (gd_act)net->acts[l],
                                 (gd_real)net->negative_slope, dst, dst);
            in = dst;
            buf = ping, ping = pong, pong = buf;
        }
    }
    return GD_OK;
}

gd_status GD(gd_batch_step)(const gd_ctx *ctx, const gd_net *net, const gd_loss *loss,
                            const gd_sgd *opt, const GD(gd_data) *data, const int64_t *rows,
                            int64_t B, GD(gd_state) *state, gd_real *work, int64_t work_len,
                            double *loss_out)
{
    const int64_t L = net->n_layers, n_in0 = net->sizes[0], n_out_last = net->sizes[L];
    const gd_real slope = (gd_real)net->negative_slope;
    gd_real *W[GD_MAX_LAYERS], *b[GD_MAX_LAYERS], *dW[GD_MAX_LAYERS], *db[GD_MAX_LAYERS];
    int64_t tile_offset[GD_MAX_LAYERS + 1];
    int64_t srows, n_shards, max_tasks, n_params, n_chunks, l;
    train_scratch s;
    const gd_real *X0;
    int n_threads;
    gd_status status = GD_OK;
    double batch_loss = 0;

    if (L < 1 || L > GD_MAX_LAYERS || B < 1)
        return GD_ERR_ARG;
    if (opt != NULL && opt->momentum != 0 && state->velocity == NULL)
        return GD_ERR_ARG;
    if (work_len < GD(gd_train_workspace_len)(net, B))
        return GD_ERR_WORKSPACE;
    carve_scratch(net, B, work, &s);
    param_views(net, state->params, W, b);
    param_views(net, state->grads, dW, db);
    n_params = gd_n_params(net);
    /* Without a row list the batch is data rows 0..B-1 and X is read in place, no gather. */
    X0 = rows != NULL ? s.Xb : data->X;

    srows = shard_rows(net, B);
    n_shards = CEIL_DIV(B, srows);
    tile_offset[0] = 0;
    max_tasks = n_shards;
    for (l = 0; l < L; l++) {
        tile_offset[l + 1] = tile_offset[l] + n_tiles(net, l);
        max_tasks = MAX(max_tasks, n_tiles(net, l) + (l > 0 ? n_shards : 0));
    }
    n_chunks = CEIL_DIV(n_params, GD_UPDATE_CHUNK);
    if (opt != NULL)
        max_tasks = MAX(max_tasks, n_chunks);
    max_tasks = MIN(max_tasks, 1 + (int64_t)(B * flops_per_row(net) / GD_MIN_THREAD_FLOPS));
    n_threads = (int)MAX(1, MIN((int64_t)ctx->n_threads, max_tasks));

#pragma omp parallel num_threads(n_threads) if (n_threads > 1)
    {
        int64_t shard, task, chunk, k;

        /* Phase 1, per row shard: gather, forward through every layer, loss, and the last
         * layer's row-backward; a shard's activations stay in this thread's cache throughout. */
#pragma omp for schedule(dynamic, 1)
        for (shard = 0; shard < n_shards; shard++) {
            const int64_t r0 = shard * srows, nr = MIN(srows, B - r0);
            const gd_real *in = X0 + r0 * n_in0;
            gd_status st;
            if (rows != NULL)
                for (k = 0; k < nr; k++) {
                    const gd_real *src = data->X + rows[r0 + k] * n_in0;
                    gd_real *dst = s.Xb + (r0 + k) * n_in0;
                    int64_t i;
                    for (i = 0; i < n_in0; i++)
                        dst[i] = src[i];
                }
            for (k = 0; k < L; k++) {
                const int64_t n_out = net->sizes[k + 1];
                GD(gd_dense_forward)(ctx, nr, net->sizes[k], n_out, in, net->sizes[k], W[k], b[k],
                                     (gd_act)net->acts[k], slope, s.Z[k] + r0 * n_out, s.A[k] + r0 * n_out);
                in = s.A[k] + r0 * n_out;
            }
            st = GD(gd_loss_rows)(loss, nr, B, n_out_last, s.A[L - 1] + r0 * n_out_last,
                                  data->y_real != NULL && rows == NULL ? data->y_real + r0 * n_out_last : data->y_real,
                                  data->y_index != NULL && rows == NULL ? data->y_index + r0 : data->y_index,
                                  rows != NULL ? rows + r0 : NULL, s.row_loss + r0, s.D[L - 1] + r0 * n_out_last);
            if (st != GD_OK) {
#pragma omp atomic write
                status = st;
            }
            GD(gd_dense_backward_rows)(ctx, nr, net->sizes[L - 1], n_out_last, W[L - 1], s.Z[L - 1] + r0 * n_out_last,
                                       s.A[L - 1] + r0 * n_out_last, (gd_act)net->acts[L - 1], slope,
                                       s.D[L - 1] + r0 * n_out_last,
                                       L > 1 ? s.D[L - 2] + r0 * net->sizes[L - 1] : NULL);
        }

        /* Phase 2, layer by layer from the top: the dW tiles of layer k together with the
         * row-backward of layer k-1 (both only need layer k's ∂loss/∂Z). */
        for (k = L - 1; k >= 0 && status == GD_OK; k--) {
            const int64_t n_in = net->sizes[k], n_out = net->sizes[k + 1];
            const int64_t tiles_j = CEIL_DIV(n_out, GD_TILE), tiles = n_tiles(net, k);
            const int64_t row_tasks = k > 0 ? n_shards : 0;
            const gd_real *Xk = k == 0 ? X0 : s.A[k - 1];
#pragma omp for schedule(dynamic, 1)
            for (task = 0; task < tiles + row_tasks; task++) {
                if (task < tiles) {
                    const int64_t i0 = (task / tiles_j) * GD_TILE, j0 = (task % tiles_j) * GD_TILE;
                    const int64_t i1 = MIN(n_in, i0 + GD_TILE), j1 = MIN(n_out, j0 + GD_TILE);
                    double penalty = 0;
                    int nonfinite = 0;
                    int64_t i;
                    GD(gd_dense_backward_weights)(ctx, B, n_in, n_out, Xk, n_in, s.D[k], i0, i1, j0, j1, dW[k], db[k]);
                    for (i = i0; i < i1; i++) {
                        gd_real *dw = dW[k] + i * n_out + j0;
                        penalty += GD(gd_penalty)(loss->l1, loss->l2, j1 - j0, W[k] + i * n_out + j0, dw);
                        nonfinite |= any_nonfinite(j1 - j0, dw);
                    }
                    if (i0 == 0)
                        nonfinite |= any_nonfinite(j1 - j0, db[k] + j0);
                    /* A NaN gradient can hide behind a finite loss (relu and the hinge margin
                     * compare it away), so the tile reports it through its penalty slot and the
                     * batch is refused before the update. */
                    s.tile_penalty[tile_offset[k] + task] = nonfinite ? (gd_real)NAN : (gd_real)penalty;
                } else {
                    const int64_t r0 = (task - tiles) * srows, nr = MIN(srows, B - r0);
                    const int64_t n_out_k = net->sizes[k];
                    GD(gd_dense_backward_rows)(ctx, nr, net->sizes[k - 1], n_out_k, W[k - 1],
                                               s.Z[k - 1] + r0 * n_out_k, s.A[k - 1] + r0 * n_out_k,
                                               (gd_act)net->acts[k - 1], slope, s.D[k - 1] + r0 * n_out_k,
                                               k > 1 ? s.D[k - 2] + r0 * net->sizes[k - 1] : NULL);
                }
            }
        }

        /* Batch loss: row losses and tile penalties summed in a fixed order (same bits for any
         * thread count); a non-finite loss stops here, before any parameter moves. */
#pragma omp single
        if (status == GD_OK) {
            for (k = 0; k < B; k++)
                batch_loss += s.row_loss[k];
            for (k = 0; k < tile_offset[L]; k++)
                batch_loss += s.tile_penalty[k];
            if (!isfinite(batch_loss))
                status = GD_ERR_NONFINITE;
        }

        if (opt != NULL && status == GD_OK) {
#pragma omp for schedule(static)
            for (chunk = 0; chunk < n_chunks; chunk++) {
                const int64_t p0 = chunk * GD_UPDATE_CHUNK, len = MIN(GD_UPDATE_CHUNK, n_params - p0);
                GD(gd_sgd_update)(opt, state->step == 0, len, state->grads + p0, state->params + p0,
                                  state->velocity != NULL ? state->velocity + p0 : NULL);
            }
        }
    }

    *loss_out = batch_loss;
    if (status == GD_OK && opt != NULL)
        state->step += 1;
    return status;
}

gd_status GD(gd_train_batches)(const gd_ctx *ctx, const gd_net *net, const gd_loss *loss,
                               const gd_sgd *opt, const GD(gd_data) *data, const int64_t *perm,
                               int64_t batch_size, int64_t first_batch, int64_t end_batch,
                               GD(gd_state) *state, gd_real *work, int64_t work_len,
                               double *loss_sum, int64_t *bad_batch)
{
    int64_t k;
    if (batch_size < 1 || first_batch < 0 || end_batch < first_batch ||
        (end_batch > first_batch && (end_batch - 1) * batch_size >= data->n))
        return GD_ERR_ARG;
    for (k = first_batch; k < end_batch; k++) {
        const int64_t r0 = k * batch_size, B = MIN(batch_size, data->n - r0);
        double batch_loss = 0;
        gd_status st = GD(gd_batch_step)(ctx, net, loss, opt, data, perm + r0, B, state, work,
                                         work_len, &batch_loss);
        if (st != GD_OK) {
            *bad_batch = k;
            return st;
        }
        *loss_sum += batch_loss * (double)B;
    }
    return GD_OK;
}
