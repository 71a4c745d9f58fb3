/* Inverted dropout masks from a counter-based hash.
 *
 * The keep factor of activation (row, col) of layer `layer` in a batch is 0 (dropped, with
 * probability rate) or 1/(1 − rate), from a hash of (batch key, layer, row of the batch, col):
 * not a random stream, so every thread count draws the same mask, and the backward pass
 * recomputes it instead of storing it. One 64-bit mix per activation, one more per row. */
#ifndef GD_DROPOUT_H
#define GD_DROPOUT_H

#include <stdint.h>

/* splitmix64's finalizer: a bijective mix in which every input bit moves every output bit. */
static inline uint64_t gd_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The key of batch `batch` of an epoch whose key is epoch_key. */
static inline uint64_t gd_dropout_batch_key(uint64_t epoch_key, int64_t batch)
{
    return gd_mix64(epoch_key + 0x9E3779B97F4A7C15ull * (uint64_t)(batch + 1));
}

static inline uint64_t gd_dropout_row_key(uint64_t batch_key, int64_t layer, int64_t row)
{
    return gd_mix64(gd_mix64(batch_key ^ (uint64_t)layer) + (uint64_t)row);
}

/* 1 when activation `col` of the row survives: a uniform 53-bit draw at or above rate. */
static inline int gd_dropout_keep(uint64_t row_key, int64_t col, double rate)
{
    const uint64_t h = gd_mix64(row_key + 0xD1B54A32D192ED03ull * (uint64_t)(col + 1));
    return (double)(h >> 11) * (1.0 / 9007199254740992.0) >= rate;
}

#endif
