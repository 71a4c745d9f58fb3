/* Whole-network passes and the mini-batch loop (see gd_train.h for the threading model).
 * Compiled once per element type (gd_real.h). */
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "gd_real.h"
#include "gd_dropout.h"
#include "gd_act.h"
#include "gd_dense.h"
#include "gd_loss.h"
#include "gd_optim.h"
#include "gd_train.h"

enum {
    GD_MAX_LAYERS = 64,          /* the Python side rejects deeper networks */
    GD_ROW_TILE = 128,           /* batch rows per GEMM tile (twice that for batches of 512+) */
    GD_NARROW_ROW_TILE = 32,     /* ... for outputs narrower than 64 columns (see batch_tiling) */
    GD_LOSS_ROWS = 32,           /* batch rows per task of the loss phase */
    GD_COL_TILE = 128,           /* output columns per tile for 256-511 outputs (see batch_tiling) */
    GD_PREDICT_ROWS = 128,       /* rows per forward chunk in gd_forward */
    GD_CHECK_BLOCK = 1 << 16,    /* elements per task of gd_any_nonfinite */
    GD_SPLIT_MIN_INPUTS = 256,   /* layer 0 with this many inputs runs in two halves of them */
    GD_PREFETCH_BYTES = 1 << 19  /* of the next batch's input rows (see run_batch) */
};
/* Each extra thread must get at least this much of the batch's work: a barrier costs about a
 * microsecond, and several microseconds more when the machine is busy. */
#define GD_MIN_THREAD_FLOPS 2.0e6

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))

/* A fixed split of a rows×cols GEMM output into tiles, numbered row-major. It depends only on
 * the matrix shape, never on the thread count: that is what makes results bit-identical for any
 * n_threads. Tiles rather than row shards, because a row shard must re-pack all of W for its
 * few rows; a tile packs only its block of W, and the whole batch usually fits in one tile row. */
typedef struct {
    int64_t rows, cols, tile_rows, tile_cols, n_col_tiles, count;
} tiling;

static tiling make_tiling(int64_t rows, int64_t cols, int64_t tile_rows, int64_t tile_cols)
{
    tiling t;
    t.rows = rows;
    t.cols = cols;
    t.tile_rows = MAX(1, MIN(rows, tile_rows));
    t.tile_cols = MAX(1, MIN(cols, tile_cols));
    t.n_col_tiles = CEIL_DIV(cols, t.tile_cols);
    t.count = CEIL_DIV(rows, t.tile_rows) * t.n_col_tiles;
    return t;
}

/* Tiles of a B × cols output of the forward or input-gradient GEMMs of a batch, whose inner
 * dimension is K. Each tile packs its rows of the left operand and its block of W, so every
 * tile boundary costs packing again, and tiles are as large as sharing the work between
 * threads allows:
 * - columns: 256 for layers of 512+ outputs, 128 for 256+, 64 for narrower ones, so that small
 *   layers still split in two. 784-512-512-10 at batch 128, one thread, Zen 4: with 128-column
 *   tiles each batch packed its 128×784 input rows 4 times over; 256 columns cut the epoch by
 *   2-3% (alternating runs, 2.65 -> 2.59 s and 2.50 -> 2.43 s, medians of 8 and 6).
 * - except that a narrow layer's tiles get 32 columns where that, and not 64, brings a tile
 *   within the BLAS's packing-free small-matrix path (small_mnk, see gd_ctx): 784-128-10 at
 *   batch 64 (tiles of 64 rows × 392 inputs: 1.6M multiply-adds at 64 columns, 0.8M at 32),
 *   alternating runs on Zen 4 with OpenBLAS's AVX-512 kernels: 0.328 -> 0.293 s per epoch at
 *   one thread, 0.199 -> 0.180 s at two (medians of 8). With the AVX2 kernels, which have no
 *   such path, 32 columns cost 2% instead, hence the condition.
 * - rows: 128, 256 at batches of 512+ rows (784-512-512-10 at batch 1024, one thread: packing
 *   was 16% of the epoch; 1.23 s -> 1.15 s per epoch), and 32 for outputs under 64 columns (a
 *   10-class output layer would otherwise be one task that a second thread waits for:
 *   784-128-10 at batch 64, 2 threads, with the 32-row loss tasks, 0.123 -> 0.118 s). */
static tiling batch_tiling(int64_t B, int64_t cols, int64_t K, int64_t small_mnk)
{
    const int64_t tile_rows = MIN(B, cols < 64 ? GD_NARROW_ROW_TILE
                                  : B >= 4 * GD_ROW_TILE ? 2 * GD_ROW_TILE : GD_ROW_TILE);
    int64_t tile_cols = cols >= 4 * GD_COL_TILE ? 2 * GD_COL_TILE
                        : cols >= 2 * GD_COL_TILE ? GD_COL_TILE : GD_COL_TILE / 2;
    const int64_t narrow = GD_COL_TILE / 4;
    if (tile_cols == GD_COL_TILE / 2 && cols > narrow && tile_rows * tile_cols * K > small_mnk &&
        tile_rows * narrow * K <= small_mnk)
        tile_cols = narrow;
    return make_tiling(B, cols, tile_rows, tile_cols);
}

/* Rows [*r0, *r1) and columns [*c0, *c1) of tile `index`. */
static void tile_bounds(const tiling *t, int64_t index, int64_t *r0, int64_t *r1, int64_t *c0,
                        int64_t *c1)
{
    *r0 = (index / t->n_col_tiles) * t->tile_rows;
    *c0 = (index % t->n_col_tiles) * t->tile_cols;
    *r1 = MIN(t->rows, *r0 + t->tile_rows);
    *c1 = MIN(t->cols, *c0 + t->tile_cols);
}

/* State buffers an optimizer reads (see gd_optim); the others may be NULL. */
static int optim_slots_used(const gd_optim *opt)
{
    switch (opt->kind) {
    case GD_OPT_ADAM:
    case GD_OPT_ADAMW:
        return 2;
    case GD_OPT_RMSPROP:
        return opt->centered ? 3 : (opt->momentum > 0 ? 2 : 1);
    case GD_OPT_ADAGRAD:
        return 1;
    default:
        return opt->momentum != 0 ? 1 : 0;
    }
}

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

/* Forward and backward GEMM FLOPs per row of a batch. */
static double flops_per_row(const gd_net *net)
{
    double flops = 0;
    int64_t l;
    for (l = 0; l < net->n_layers; l++)
        flops += 6.0 * (double)net->sizes[l] * (double)net->sizes[l + 1];
    return flops;
}

/* Scratch of one training batch of B rows, carved from the caller's workspace. */
typedef struct {
    gd_real *Xb;                 /* gathered input rows, B × sizes[0] */
    gd_real *Z[GD_MAX_LAYERS];   /* pre-activations, B × sizes[l+1] */
    gd_real *A[GD_MAX_LAYERS];   /* activations */
    gd_real *D[GD_MAX_LAYERS];   /* ∂loss/∂A, turned into ∂loss/∂Z in place */
    gd_real *M[GD_MAX_LAYERS];   /* the output after dropout (A itself for a layer without) */
    gd_real *partial;            /* B × sizes[1]: the second half's X·W_0 (see input_split) */
    gd_real *row_loss;           /* B */
    gd_real *row_correct;        /* B: 1 where the row is classified right */
    gd_real *tile_penalty;       /* one partial penalty per dW tile, summed in tile order */
    int64_t len;
} train_scratch;

/* Tiles of layer l's weight gradient dW (n_in × n_out): blocks of whole rows, so that a tile's
 * weights are one contiguous range of the flat parameters, which the update phase hands to the
 * thread that computed the tile (see run_batch). */
static tiling weight_tiling(const gd_net *net, int64_t l)
{
    /* Narrow layers get half-height tiles: more of them to share between threads, and small
     * enough for OpenBLAS's small-matrix kernel, which skips packing (784×128 at batch 64:
     * 64-row tiles run at 109 GFLOP/s here, 128-row ones at 80). */
    const int64_t n_in = net->sizes[l], n_out = net->sizes[l + 1];
    const int64_t height = n_out >= 256 ? GD_ROW_TILE : GD_ROW_TILE / 2;
    /* A split layer 0 (see input_split) gets an even number of equal tiles instead, about that
     * high, so that its two halves of the inputs are whole tiles of equal work. */
    if (l == 0 && n_in >= GD_SPLIT_MIN_INPUTS) {
        const int64_t pairs = MAX(1, (n_in + height) / (2 * height)); /* n_in / 2h, rounded */
        return make_tiling(n_in, n_out, CEIL_DIV(n_in, 2 * pairs), n_out);
    }
    return make_tiling(n_in, n_out, height, n_out);
}

/* The first row of W_0 in the second half of layer 0's inputs, or 0 when layer 0 is not split.
 *
 * Why split: W_0 is most of a wide-input network's parameters (784-128-10: 98%). Computed in
 * column tiles in the forward and updated in row blocks, half of it moved between the two cores
 * in every batch, and on this project's VM, whose two vCPUs are at times placed far apart, such
 * epochs ran 2x slower than in near phases, slower than one thread. With the inputs split in
 * two halves, each a whole number of dW tiles, the thread that gathers a half of each row also
 * computes that half's partial forward product, its dW tiles and their update: W_0, its
 * gradient and optimizer state stay in one core's cache, and only the B×n_out partial sum and
 * dZ_0 cross. The halves are fixed by the shape, so the bits do not depend on the thread
 * count: Z_0 = (b + X[:, :s]·W_0[:s]) + X[:, s:]·W_0[s:] for every team. Two threads,
 * alternating runs on the Zen 4 VM: 784-128-10 at batch 64 0.254 -> 0.230 s per epoch (median
 * of 14), the slowest run 0.514 -> 0.325 s; 784-512-512-10 at batch 128 1.43 -> 1.33 s; one
 * thread unchanged (-0.9%, +0.4%). */
static int64_t input_split(const gd_net *net)
{
    tiling t;
    if (net->sizes[0] < GD_SPLIT_MIN_INPUTS)
        return 0;
    t = weight_tiling(net, 0);
    return t.tile_rows * CEIL_DIV(t.count, 2);
}

/* Dropout rate of layer l's output (0 without). */
static double dropout_rate(const gd_net *net, int64_t l)
{
    return net->dropout != NULL ? net->dropout[l] : 0.0;
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
        s->M[l] = s->A[l];
        if (dropout_rate(net, l) > 0) {
            s->M[l] = p;
            p += size;
        }
        tiles += weight_tiling(net, l).count;
    }
    s->partial = p;
    if (input_split(net) > 0)
        p += B * net->sizes[1];
    s->row_loss = p;
    p += B;
    s->row_correct = p;
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

/* Forward pass of one chunk of rows into out, with `scratch` (2 × rows × widest hidden) for the
 * hidden layers. Returns GD_ERR_NONFINITE for an inf or NaN in the chunk's input. */
GD_VECTOR_CLONES
static gd_status forward_chunk(const gd_ctx *ctx, const gd_net *net, gd_real *const *W,
                               gd_real *const *b, int64_t rows, const gd_real *in, gd_real *out,
                               gd_real *scratch, int64_t slice)
{
    gd_real *ping = scratch, *pong = scratch + slice / 2, *buf;
    int64_t l;
    /* The input is checked here, in the pass that reads it anyway, not by the caller. */
    if (any_nonfinite(rows * net->sizes[0], in))
        return GD_ERR_NONFINITE;
    for (l = 0; l < net->n_layers; l++) {
        const int64_t n_in = net->sizes[l], n_out = net->sizes[l + 1];
        gd_real *dst = l == net->n_layers - 1 ? out : ping;
        /* inference keeps only A: Z and A share the buffer. Z is checked before the activation,
         * which could hide an overflow (relu(−inf) = 0). */
        GD(gd_dense_forward)(ctx, rows, n_in, n_out, in, n_in, W[l], n_out, b[l], GD_ACT_IDENTITY,
                             (gd_real)net->negative_slope, dst, dst, n_out);
        if (any_nonfinite(rows * n_out, dst))
            return GD_ERR_OVERFLOW;
        GD(gd_act_forward)((gd_act)net->acts[l], (gd_real)net->negative_slope, rows * n_out, dst, dst);
        in = dst;
        buf = ping, ping = pong, pong = buf;
    }
    /* finite inputs can still overflow (inf − inf = NaN): never hand back a silent NaN */
    return any_nonfinite(rows * net->sizes[net->n_layers], out) ? GD_ERR_OVERFLOW : GD_OK;
}

gd_status GD(gd_forward)(const gd_ctx *ctx, const gd_net *net, const gd_real *params, int64_t n,
                         const gd_real *X, gd_real *out, gd_real *work, int64_t work_len)
{
    const int64_t L = net->n_layers, n_chunks = CEIL_DIV(n, GD_PREDICT_ROWS);
    const int64_t slice = 2 * GD_PREDICT_ROWS * widest_hidden(net);
    gd_real *W[GD_MAX_LAYERS], *b[GD_MAX_LAYERS];
    const int n_threads = gd_team_size((int)MAX(1, MIN((int64_t)ctx->n_threads, n_chunks)));
    gd_status status = GD_OK;
    int64_t chunk;

    if (L < 1 || L > GD_MAX_LAYERS || n < 0)
        return GD_ERR_ARG;
    if (work_len < n_threads * slice)
        return GD_ERR_WORKSPACE;
    param_views(net, (gd_real *)params, W, b);

    if (n_threads == 1) { /* no OpenMP call at all: a one-row predict is a few BLAS calls */
        for (chunk = 0; chunk < n_chunks && status == GD_OK; chunk++) {
            const int64_t r0 = chunk * GD_PREDICT_ROWS, rows = MIN(GD_PREDICT_ROWS, n - r0);
            status = forward_chunk(ctx, net, W, b, rows, X + r0 * net->sizes[0],
                                   out + r0 * net->sizes[L], work, slice);
        }
        return status;
    }
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (chunk = 0; chunk < n_chunks; chunk++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        const int64_t r0 = chunk * GD_PREDICT_ROWS, rows = MIN(GD_PREDICT_ROWS, n - r0);
        gd_status st = forward_chunk(ctx, net, W, b, rows, X + r0 * net->sizes[0],
                                     out + r0 * net->sizes[L], work + tid * slice, slice);
        if (st != GD_OK) {
#pragma omp atomic write
            status = st;
        }
    }
    return status;
}

/* fit checks its whole X before training (a refused fit must change nothing), a pass over the
 * data set for every call: 2% of a 784-128-10 epoch on 60,000 rows as NumPy's sum (8.7 ms).
 * Vectorized integer compares on all the threads the fit will use instead (6.0 ms on one
 * thread, 5.2 ms on two, Zen 4). */
GD_VECTOR_CLONES
int GD(gd_any_nonfinite)(const gd_ctx *ctx, int64_t n, const gd_real *x)
{
    const int64_t n_blocks = CEIL_DIV(n, GD_CHECK_BLOCK);
    const int n_threads = gd_team_size((int)MAX(1, MIN((int64_t)ctx->n_threads, n_blocks)));
    int found = 0;
    int64_t block;
    if (n_threads == 1)
        return any_nonfinite(n, x);
#pragma omp parallel for num_threads(n_threads) schedule(static) reduction(| : found)
    for (block = 0; block < n_blocks; block++) {
        const int64_t start = block * GD_CHECK_BLOCK;
        found |= any_nonfinite(MIN(GD_CHECK_BLOCK, n - start), x + start);
    }
    return found;
}

/* Everything one batch's phases share. Each phase is an orphaned OpenMP worksharing loop in
 * run_batch: inside a parallel region the team splits it; called on its own (one thread) it runs
 * through without any OpenMP machinery, whose barriers cost a futex call each even for a team of
 * one (8 per batch: several microseconds of a small model's train_step). */
typedef struct {
    const gd_ctx *ctx;
    const gd_net *net;
    const gd_loss *loss;
    const gd_optim *opt;
    double lr;
    const GD(gd_data) *data;
    const int64_t *rows;
    int64_t B;
    const int64_t *next_rows; /* the next batch's rows, prefetched during this one's backward */
    int64_t next_B;
    uint64_t dropout_key;
    GD(gd_state) *state;
    int dropping;
    double weight_total;
    const gd_real *X0;
    train_scratch s;
    gd_real *W[GD_MAX_LAYERS], *b[GD_MAX_LAYERS], *dW[GD_MAX_LAYERS], *db[GD_MAX_LAYERS];
    tiling fwd[GD_MAX_LAYERS], wgt[GD_MAX_LAYERS], inp[GD_MAX_LAYERS];
    int64_t tile_offset[GD_MAX_LAYERS + 1];
    int64_t n_row_blocks;
    int64_t split;         /* input_split(net) */
    gd_status status;      /* shared: any thread may set it, all read it after a barrier */
    int overflow;          /* set by an update that stepped a weight past the type's range */
    double batch_loss, batch_correct;
    int64_t arrived[GD_MAX_LAYERS]; /* free-order mode: partials added into each dW so far */
} GD(batch_job);

/* This thread's number in the team running the batch (0 outside a parallel region). */
static int thread_number(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Benchmark only (ctx->shard_work set; see gd_ctx): the data-parallel way to compute layer k's
 * dW and db, there to measure what determinism costs. Each thread takes an equal shard of the
 * batch rows, computes its partial gradient in its own slice of shard_work, and adds it into
 * dW in the order the threads finish, so the bits depend on timing and on the thread count.
 * The default path has no reduction at all: each dW tile is one GEMM over the whole batch. */
GD_VECTOR_CLONES
static void free_order_weight_gradients(GD(batch_job) *j, int64_t k, const gd_real *Xk)
{
    const int64_t n_in = j->net->sizes[k], n_out = j->net->sizes[k + 1];
    const int64_t len = (n_in + 1) * n_out; /* dW_k, then db_k: adjacent in the flat buffers */
    const int t = thread_number();
    int n = 1;
    int64_t r0, r1, i;
    gd_real *partial;
#ifdef _OPENMP
    n = omp_get_num_threads();
#endif
    r0 = j->B * t / n, r1 = j->B * (t + 1) / n;
    partial = (gd_real *)j->ctx->shard_work + (int64_t)t * gd_shard_work_len(j->net);
    GD(gd_dense_backward_weights)(j->ctx, r1 - r0, n_in, n_out, Xk + r0 * n_in, n_in,
                                  j->s.D[k] + r0 * n_out, 0, n_in, 0, n_out, partial,
                                  partial + n_in * n_out);
#pragma omp critical(gd_free_order)
    {
        gd_real *grad = j->dW[k];
        if (j->arrived[k]++ == 0)
            for (i = 0; i < len; i++)
                grad[i] = partial[i];
        else
            for (i = 0; i < len; i++)
                grad[i] += partial[i];
    }
#pragma omp barrier
}

/* One optimizer step over the parameters [p, p + len) of the flat buffer. */
GD_VECTOR_CLONES
static void update_range(GD(batch_job) *j, gd_real *p, int64_t len)
{
    GD(gd_state) *state = j->state;
    const int64_t p0 = (int64_t)(p - state->params);
    gd_real *slots[GD_OPTIM_SLOTS];
    int slot;
    for (slot = 0; slot < GD_OPTIM_SLOTS; slot++)
        slots[slot] = state->slots[slot] != NULL ? state->slots[slot] + p0 : NULL;
    /* an update that overflowed goes to j->overflow, not j->status, which every thread reads
     * once more after the update has started (see run_batch) */
    if (GD(gd_optim_update)(j->opt, j->lr, state->step + 1, len, state->grads + p0, p, slots)) {
#pragma omp atomic write
        j->overflow = 1;
    }
}

/* Forward tile rows [r0, r1) × columns [c0, c1) of layer k once Z_k holds its pre-activations:
 * the activation (unless the GEMM's epilogue applied it), the finiteness check and dropout. */
GD_VECTOR_CLONES
static void finish_forward_tile(GD(batch_job) *j, int64_t k, int activate, int64_t r0, int64_t r1,
                                int64_t c0, int64_t c1)
{
    const gd_net *net = j->net;
    const int64_t n_out = net->sizes[k + 1];
    const double rate = j->dropping ? dropout_rate(net, k) : 0.0;
    gd_real *Z = j->s.Z[k], *A = j->s.A[k], *M = j->s.M[k];
    int64_t r, c;
    for (r = r0; r < r1; r++) {
        /* an overflowed pre-activation can vanish behind the activation (relu(−inf) = 0):
         * refuse the batch here, as a non-finite loss */
        if (any_nonfinite(c1 - c0, Z + r * n_out + c0)) {
#pragma omp atomic write
            j->status = GD_ERR_NONFINITE;
        }
        if (activate)
            GD(gd_act_forward)((gd_act)net->acts[k], (gd_real)net->negative_slope, c1 - c0,
                               Z + r * n_out + c0, A + r * n_out + c0);
    }
    if (rate > 0) { /* M = A ⊙ mask/(1 − rate); A stays whole for act' */
        const gd_real scale = (gd_real)(1.0 / (1.0 - rate));
        for (r = r0; r < r1; r++) {
            const uint64_t row_key = gd_dropout_row_key(j->dropout_key, k, r);
            for (c = c0; c < c1; c++)
                M[r * n_out + c] = gd_dropout_keep(row_key, c, rate) ? A[r * n_out + c] * scale
                                                                     : (gd_real)0;
        }
    }
}

/* Layer 0's forward in two halves of its inputs (see input_split): tiles of
 * Z_0 = b_0 + X[:, :s]·W_0[:s] and of the partial X[:, s:]·W_0[s:], the halves' tiles in two
 * contiguous runs so that two threads take one half each (the half each gathered); then, after
 * the barrier, Z_0 += partial and the rest of each tile. */
GD_VECTOR_CLONES
static void split_forward(GD(batch_job) *j)
{
    const gd_net *net = j->net;
    const int64_t n_in = net->sizes[0], n_out = net->sizes[1], s = j->split;
    const tiling *t = &j->fwd[0];
    gd_real *Z = j->s.Z[0], *P = j->s.partial;
    int64_t task;
#pragma omp for schedule(static)
    for (task = 0; task < 2 * t->count; task++) {
        int64_t r0, r1, c0, c1;
        tile_bounds(t, task % t->count, &r0, &r1, &c0, &c1);
        if (task < t->count)
            GD(gd_dense_forward)(j->ctx, r1 - r0, s, c1 - c0, j->X0 + r0 * n_in, n_in,
                                 j->W[0] + c0, n_out, j->b[0] + c0, GD_ACT_IDENTITY, 0,
                                 Z + r0 * n_out + c0, Z + r0 * n_out + c0, n_out);
        else
            GD_GEMM(j->ctx)(0, 0, r1 - r0, c1 - c0, n_in - s, 1, j->X0 + r0 * n_in + s, n_in,
                            j->W[0] + s * n_out + c0, n_out, 0, P + r0 * n_out + c0, n_out);
    }
#pragma omp for schedule(static)
    for (task = 0; task < t->count; task++) {
        int64_t r0, r1, c0, c1, r, c;
        tile_bounds(t, task, &r0, &r1, &c0, &c1);
        for (r = r0; r < r1; r++)
            for (c = c0; c < c1; c++)
                Z[r * n_out + c] += P[r * n_out + c];
        finish_forward_tile(j, 0, 1, r0, r1, c0, c1);
    }
}

/* Iterations per thread in the dW and update loops of layer k: 1 (round-robin) for most; for a
 * split layer 0 contiguous runs, so that with two threads each takes the tiles of the half of
 * the inputs it gathered. Only the assignment depends on the team; the tiles do not. */
static int64_t weight_chunk(const GD(batch_job) *j, int64_t k)
{
    int n = 1;
#ifdef _OPENMP
    n = omp_get_num_threads();
#endif
    return k == 0 && j->split > 0 ? CEIL_DIV(j->wgt[0].count, n) : 1;
}

/* Part `task` of a pass over the input rows of a batch of n rows, split as the gather splits it:
 * for a split layer 0 the first half of every row, then the second half (see input_split), so
 * that two threads on a static schedule each take the half they compute with. */
static void row_part(const GD(batch_job) *j, int64_t task, int64_t n, int64_t *r, int64_t *c0,
                     int64_t *c1)
{
    const int64_t half = task / n;
    *r = task % n;
    *c0 = half == 0 ? 0 : j->split;
    *c1 = half == 0 && j->split > 0 ? j->split : j->net->sizes[0];
}

GD_VECTOR_CLONES
static void run_batch(GD(batch_job) *j)
{
    const gd_ctx *ctx = j->ctx;
    const gd_net *net = j->net;
    const gd_loss *loss = j->loss;
    const gd_optim *opt = j->opt;
    const GD(gd_data) *data = j->data;
    const int64_t *rows = j->rows;
    const int64_t B = j->B, L = net->n_layers, n_in0 = net->sizes[0], n_out_last = net->sizes[L];
    const uint64_t dropout_key = j->dropout_key;
    const int dropping = j->dropping;
    const double weight_total = j->weight_total;
    const gd_real *X0 = j->X0;
    const gd_real slope = (gd_real)net->negative_slope;
    const train_scratch s = j->s;
    gd_real *const *W = j->W, *const *b = j->b, *const *dW = j->dW, *const *db = j->db;
    const tiling *fwd = j->fwd, *wgt = j->wgt, *inp = j->inp;
    const int64_t *tile_offset = j->tile_offset;
    const int64_t n_row_blocks = j->n_row_blocks;
    const int64_t halves = j->split > 0 ? 2 : 1; /* parts of each input row (see row_part) */
    int64_t task, k;

    /* Gather the batch's rows of X (the permutation picks them), in the parts of row_part. */
    if (rows != NULL) {
#pragma omp for schedule(static)
        for (task = 0; task < halves * B; task++) {
            int64_t r, c0, c1, i;
            const gd_real *src;
            gd_real *dst;
            row_part(j, task, B, &r, &c0, &c1);
            src = data->X + rows[r] * n_in0;
            dst = s.Xb + r * n_in0;
            for (i = c0; i < c1; i++)
                dst[i] = src[i];
        }
    }

    /* Forward, layer by layer: tiles of Z_k = A_{k-1}·W_k + b_k, with the activation. */
    for (k = 0; k < L; k++) {
        const int64_t n_in = net->sizes[k], n_out = net->sizes[k + 1];
        const gd_real *in = k == 0 ? X0 : s.M[k - 1];
        if (k == 0 && j->split > 0) {
            split_forward(j);
            continue;
        }
#pragma omp for schedule(dynamic, 1)
        for (task = 0; task < fwd[k].count; task++) {
            int64_t r0, r1, c0, c1;
            tile_bounds(&fwd[k], task, &r0, &r1, &c0, &c1);
            GD(gd_dense_forward)(ctx, r1 - r0, n_in, c1 - c0, in + r0 * n_in, n_in, W[k] + c0,
                                 n_out, b[k] + c0, (gd_act)net->acts[k], slope,
                                 s.Z[k] + r0 * n_out + c0, s.A[k] + r0 * n_out + c0, n_out);
            finish_forward_tile(j, k, 0, r0, r1, c0, c1);
        }
    }

    /* Loss and ∂loss/∂Z of the last layer, per block of rows. */
#pragma omp for schedule(dynamic, 1)
    for (task = 0; task < n_row_blocks; task++) {
        const int64_t r0 = task * GD_LOSS_ROWS, nr = MIN(GD_LOSS_ROWS, B - r0);
        const int64_t offset = r0 * n_out_last;
        const int in_place = rows == NULL; /* then targets and weights start at row r0 */
        gd_status st = GD(gd_loss_rows)(
            loss, nr, weight_total, n_out_last, s.A[L - 1] + offset,
            data->y_real != NULL && in_place ? data->y_real + offset : data->y_real,
            data->y_index != NULL && in_place ? data->y_index + r0 : data->y_index,
            data->weights != NULL && in_place ? data->weights + r0 : data->weights,
            in_place ? NULL : rows + r0, s.row_loss + r0, s.row_correct + r0,
            s.D[L - 1] + offset);
        if (st != GD_OK) {
#pragma omp atomic write
            j->status = st;
        }
        GD(gd_act_backward)((gd_act)net->acts[L - 1], slope, nr * n_out_last, s.Z[L - 1] + offset,
                            s.A[L - 1] + offset, s.D[L - 1] + offset, s.D[L - 1] + offset);
    }

    /* Prefetch the next batch's input rows (up to GD_PREFETCH_BYTES of them), each thread the
     * parts it will gather (row_part on the same static schedule). The gather reads rows at
     * random from all of X and waits on DRAM (784-128-10 at batch 64: 7.5% of the epoch);
     * issued before the backward pass, the fetches overlap its GEMMs. The prefetch instructions
     * themselves stall once the core's miss buffers are full (perf, small: the gather's time
     * fell by 280 samples, this loop took 127). Alternating runs on the Zen 4 VM, one thread:
     * small -1.1% to -2.2% (four sets of 8), wide -0.8%, wide at batch 1024 -0.2%; two
     * threads: small -0.2%, wide -0.7%. Inline here, not in a function of its own: GCC takes
     * a function that only prefetches for one without effects and drops the call. */
    if (j->next_rows != NULL) {
        const int64_t row_bytes = n_in0 * (int64_t)sizeof(gd_real);
        const int64_t n = MIN(j->next_B, GD_PREFETCH_BYTES / row_bytes);
#pragma omp for schedule(static) nowait
        for (task = 0; task < halves * n; task++) {
            int64_t r, c0, c1, offset;
            const char *src;
            row_part(j, task, n, &r, &c0, &c1);
            src = (const char *)(data->X + j->next_rows[r] * n_in0 + c0);
            for (offset = 0; offset < (c1 - c0) * (int64_t)sizeof(gd_real); offset += 64)
                __builtin_prefetch(src + offset, 0, 2); /* into L2 (3, into L1 too: -0.5%) */
        }
    }

    /* Backward, from the top layer down: the dW tiles of layer k, then the tiles of
     * dZ_{k-1} = (dZ_k·W_kᵀ) ⊙ act'(Z_{k-1}); both only read dZ_k. */
    for (k = L - 1; k >= 0 && j->status == GD_OK; k--) {
        const int64_t n_in = net->sizes[k], n_out = net->sizes[k + 1];
        const int64_t weight_tasks = wgt[k].count, input_tasks = k > 0 ? inp[k].count : 0;
        const gd_real *Xk = k == 0 ? X0 : s.M[k - 1];
        const double rate_in = k > 0 && dropping ? dropout_rate(net, k - 1) : 0.0;
        const double l1 = loss->l1 + (net->l1 != NULL ? net->l1[k] : 0.0);
        const double l2 = loss->l2 + (net->l2 != NULL ? net->l2[k] : 0.0);
        if (ctx->shard_work != NULL) /* benchmark only: the tiles below then skip the GEMM */
            free_order_weight_gradients(j, k, Xk);
        /* dW tiles on a static schedule: the update phase below gives each tile's weights to the
         * same thread, so gradients never move between cores (on this project's shared VM the
         * two vCPUs are at times far apart: a cache line then takes ~350 ns to cross instead of
         * ~70, and epochs that moved the gradients across ran 2× slower). Round-robin (chunks
         * of 1), not in halves: a layer's last tile is often a sliver (784 rows = 6 tiles of 128
         * and one of 16), and halves gave one of two threads 4 full tiles against 2 and the
         * sliver. No barrier after them: nothing reads dW before the update, and the input
         * tiles fill any imbalance. */
#pragma omp for schedule(static, weight_chunk(j, k)) nowait
        for (task = 0; task < weight_tasks; task++) {
            int64_t r0, r1, c0, c1;
            double penalty = 0;
            int nonfinite = 0;
            int64_t i;
            tile_bounds(&wgt[k], task, &r0, &r1, &c0, &c1);
            if (ctx->shard_work == NULL)
                GD(gd_dense_backward_weights)(ctx, B, n_in, n_out, Xk, n_in, s.D[k], r0, r1, c0,
                                              c1, dW[k], db[k]);
            for (i = r0; i < r1; i++) {
                gd_real *dw = dW[k] + i * n_out + c0;
                penalty += GD(gd_penalty)(l1, l2, c1 - c0, W[k] + i * n_out + c0, dw);
                nonfinite |= any_nonfinite(c1 - c0, dw);
            }
            if (r0 == 0)
                nonfinite |= any_nonfinite(c1 - c0, db[k] + c0);
            /* A NaN gradient can hide behind a finite loss (relu and the hinge margin
             * compare it away), so the tile reports it through its penalty slot and the
             * batch is refused before the update. */
            s.tile_penalty[tile_offset[k] + task] = nonfinite ? (gd_real)NAN : (gd_real)penalty;
        }
#pragma omp for schedule(dynamic, 1)
        for (task = 0; task < input_tasks; task++) {
            int64_t r0, r1, c0, c1;
            tile_bounds(&inp[k], task, &r0, &r1, &c0, &c1);
            GD(gd_dense_backward_input)(ctx, r1 - r0, c1 - c0, n_out, s.D[k] + r0 * n_out,
                                        n_out, W[k] + c0 * n_out, n_out,
                                        (gd_act)net->acts[k - 1], slope,
                                        s.Z[k - 1] + r0 * n_in + c0, s.A[k - 1] + r0 * n_in + c0,
                                        n_in, s.D[k - 1] + r0 * n_in + c0, n_in);
            if (rate_in > 0) { /* the dropped activations pass no gradient back */
                const gd_real scale = (gd_real)(1.0 / (1.0 - rate_in));
                int64_t r, c;
                for (r = r0; r < r1; r++) {
                    const uint64_t row_key = gd_dropout_row_key(dropout_key, k - 1, r);
                    gd_real *d = s.D[k - 1] + r * n_in;
                    for (c = c0; c < c1; c++)
                        d[c] = gd_dropout_keep(row_key, c, rate_in) ? d[c] * scale : (gd_real)0;
                }
            }
        }
    }

    /* Batch loss: row losses and tile penalties summed in a fixed order (same bits for any
     * thread count); a non-finite loss or gradient stops here, before any parameter moves.
     * Every thread sums the same values in the same order after the barrier that ended the
     * backward pass, so all reach the same decision with no barrier of their own (one fewer
     * per batch); the first thread stores the sums. */
    {
        const gd_status status = j->status; /* no thread writes it after that barrier */
        double batch_loss = 0, batch_correct = 0;
        if (status == GD_OK) {
            for (k = 0; k < B; k++) {
                batch_loss += s.row_loss[k];
                batch_correct += s.row_correct[k];
            }
            for (k = 0; k < tile_offset[L]; k++)
                batch_loss += s.tile_penalty[k];
        }
        if (thread_number() == 0) {
            j->batch_loss = batch_loss;
            j->batch_correct = batch_correct;
        }
        if (status != GD_OK || !isfinite(batch_loss) || opt == NULL)
            return;
    }

    /* The update, tile by tile with the dW tiles' static schedule (the same iteration count and
     * team: OpenMP gives each thread the same tiles), so each thread updates the weights whose
     * gradients it computed; the first row tile of a layer also carries its biases. */
    for (k = 0; k < L; k++) {
        const int64_t n_out = net->sizes[k + 1];
#pragma omp for schedule(static, weight_chunk(j, k)) nowait
        for (task = 0; task < wgt[k].count; task++) {
            int64_t r0, r1, c0, c1;
            tile_bounds(&wgt[k], task, &r0, &r1, &c0, &c1);
            update_range(j, W[k] + r0 * n_out, (r1 - r0) * n_out);
            if (r0 == 0)
                update_range(j, b[k], n_out);
        }
    }
}

static gd_status batch_step(const gd_ctx *ctx, const gd_net *net, const gd_loss *loss,
                            const gd_optim *opt, double lr, const GD(gd_data) *data,
                            const int64_t *rows, int64_t B, const int64_t *next_rows,
                            int64_t next_B, uint64_t dropout_key,
                            GD(gd_state) *state, gd_real *work, int64_t work_len,
                            double *loss_out, double *correct_out)
{
    const int64_t L = net->n_layers;
    GD(batch_job) job;
    int64_t max_tasks, l;
    int n_threads;

    if (L < 1 || L > GD_MAX_LAYERS || B < 1)
        return GD_ERR_ARG;
    if (opt != NULL)
        for (l = 0; l < optim_slots_used(opt); l++)
            if (state->slots[l] == NULL)
                return GD_ERR_ARG;
    if (work_len < GD(gd_train_workspace_len)(net, B))
        return GD_ERR_WORKSPACE;

    job.ctx = ctx, job.net = net, job.loss = loss, job.opt = opt, job.lr = lr, job.data = data;
    job.rows = rows, job.B = B, job.next_rows = next_rows, job.next_B = next_B;
    job.dropout_key = dropout_key, job.state = state;
    job.status = GD_OK, job.overflow = 0, job.batch_loss = 0, job.batch_correct = 0;
    for (l = 0; l < L; l++)
        job.arrived[l] = 0;
    /* dropout only while training: loss_and_grad (no optimizer) sees the whole network */
    job.dropping = opt != NULL && net->dropout != NULL;
    carve_scratch(net, B, work, &job.s);
    job.split = input_split(net);
    if (!job.dropping) /* the whole network: every layer feeds its A forward */
        for (l = 0; l < L; l++)
            job.s.M[l] = job.s.A[l];
    param_views(net, state->params, job.W, job.b);
    param_views(net, state->grads, job.dW, job.db);
    /* Without a row list the batch is data rows 0..B-1 and X is read in place, no gather. */
    job.X0 = rows != NULL ? job.s.Xb : data->X;
    job.weight_total = (double)B;
    if (data->weights != NULL) { /* the weighted mean's denominator, in row order */
        job.weight_total = 0;
        for (l = 0; l < B; l++)
            job.weight_total += data->weights[rows != NULL ? rows[l] : l];
    }

    /* The fixed work split of this batch (see tiling): forward Z_l, weight gradient dW_l and
     * input gradient dA_{l-1} = dZ_l·W_lᵀ of every layer. */
    job.n_row_blocks = CEIL_DIV(B, GD_LOSS_ROWS);
    max_tasks = job.n_row_blocks;
    job.tile_offset[0] = 0;
    for (l = 0; l < L; l++) {
        /* a split layer 0 multiplies each half of its inputs on its own (see input_split) */
        const int64_t K = l == 0 && job.split > 0 ? MAX(job.split, net->sizes[0] - job.split)
                                                  : net->sizes[l];
        job.fwd[l] = batch_tiling(B, net->sizes[l + 1], K, ctx->blas_small_mnk);
        job.wgt[l] = weight_tiling(net, l);
        job.inp[l] = batch_tiling(B, net->sizes[l], net->sizes[l + 1], ctx->blas_small_mnk);
        job.tile_offset[l + 1] = job.tile_offset[l] + job.wgt[l].count;
        max_tasks = MAX(max_tasks, MAX(job.fwd[l].count,
                                       job.wgt[l].count + (l > 0 ? job.inp[l].count : 0)));
    }
    max_tasks = MIN(max_tasks, 1 + (int64_t)(B * flops_per_row(net) / GD_MIN_THREAD_FLOPS));
    n_threads = gd_team_size((int)MAX(1, MIN((int64_t)ctx->n_threads, max_tasks)));

    if (n_threads > 1) {
#pragma omp parallel num_threads(n_threads)
        run_batch(&job);
    } else {
        run_batch(&job);
    }
    if (job.status == GD_OK && !isfinite(job.batch_loss))
        job.status = GD_ERR_NONFINITE; /* refused: no parameter moved */
    else if (job.status == GD_OK && job.overflow)
        job.status = GD_ERR_OVERFLOW;
    *loss_out = job.batch_loss;
    if (correct_out != NULL)
        *correct_out = job.batch_correct;
    if (job.status == GD_OK && opt != NULL)
        state->step += 1;
    return job.status;
}

gd_status GD(gd_batch_step)(const gd_ctx *ctx, const gd_net *net, const gd_loss *loss,
                            const gd_optim *opt, double lr, const GD(gd_data) *data,
                            const int64_t *rows, int64_t B, uint64_t dropout_key,
                            GD(gd_state) *state, gd_real *work, int64_t work_len,
                            double *loss_out, double *correct_out)
{
    return batch_step(ctx, net, loss, opt, lr, data, rows, B, NULL, 0, dropout_key, state, work,
                      work_len, loss_out, correct_out);
}

gd_status GD(gd_train_batches)(const gd_ctx *ctx, const gd_net *net, const gd_loss *loss,
                               const gd_optim *opt, const double *lrs, const GD(gd_data) *data,
                               const int64_t *perm, int64_t batch_size, int64_t first_batch,
                               int64_t end_batch, GD(gd_state) *state, gd_real *work,
                               int64_t work_len, const volatile int *stop, double *loss_sum,
                               double *correct_sum, int64_t *bad_batch)
{
    int64_t k;
    if (batch_size < 1 || first_batch < 0 || end_batch < first_batch ||
        (end_batch > first_batch && (end_batch - 1) * batch_size >= data->n))
        return GD_ERR_ARG;
    for (k = first_batch; k < end_batch; k++) {
        const int64_t r0 = k * batch_size, B = MIN(batch_size, data->n - r0);
        double batch_loss = 0, batch_correct = 0;
        gd_status st;
        if (stop != NULL && *stop) {
            *bad_batch = k;
            return GD_INTERRUPTED;
        }
        st = batch_step(ctx, net, loss, opt, lrs != NULL ? lrs[k] : opt->lr, data, perm + r0, B,
                        k + 1 < end_batch ? perm + r0 + B : NULL,
                        k + 1 < end_batch ? MIN(batch_size, data->n - r0 - B) : 0,
                        gd_dropout_batch_key(data->dropout_seed, k), state, work, work_len,
                        &batch_loss, &batch_correct);
        if (st != GD_OK) {
            *bad_batch = k;
            return st;
        }
        *loss_sum += batch_loss * (double)B;
        *correct_sum += batch_correct;
    }
    return GD_OK;
}
