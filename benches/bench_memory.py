"""Peak resident memory of one training epoch on MNIST-shaped data, gdcore against PyTorch and
JAX, each in a fresh process (ru_maxrss), next to the bound the design promises:
data + 3 × parameters + workspace + 40 MB.

    python benches/bench_memory.py [--samples 60000]
"""
import argparse
import json
import subprocess
import sys
import textwrap

PROLOGUE = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    n = int(sys.argv[1])
    rng = np.random.default_rng(0)
    X = rng.random((n, 784), dtype=np.float32)
    y = rng.integers(0, 10, n)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
""")

RUNNERS = {
    "gdcore": """
        import gdcore as gd
        model = gd.MLP([784, 512, 512, 10], seed=0)
        model.fit(X, y, optimizer=gd.optim.SGD(lr=0.01, momentum=0.9, nesterov=True), epochs=1,
                  batch_size=128, verbose=0)
        extra = {"params_mb": model.n_params * 4 / 2**20,
                 "workspace_mb": model._train_work.nbytes / 2**20}
    """,
    "torch": """
        import torch
        torch.set_num_threads(2)
        net = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                  torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        perm = torch.randperm(n)
        for i in range(0, n, 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx]).backward()
            opt.step()
        extra = {}
    """,
    "jax": """
        import jax, jax.numpy as jnp
        sizes = [784, 512, 512, 10]
        keys = jax.random.split(jax.random.PRNGKey(0), 3)
        params = [(jax.random.normal(k, (a, b)) * 0.05, jnp.zeros(b))
                  for k, a, b in zip(keys, sizes[:-1], sizes[1:])]
        velocity = jax.tree_util.tree_map(jnp.zeros_like, params)
        def loss_fn(params, xb, yb):
            h = xb
            for W, b in params[:-1]:
                h = jax.nn.relu(h @ W + b)
            logits = h @ params[-1][0] + params[-1][1]
            return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(yb.shape[0]), yb])
        @jax.jit
        def step(state, batch):
            params, velocity = state
            g = jax.grad(loss_fn)(params, *batch)
            velocity = jax.tree_util.tree_map(lambda v, gi: 0.9 * v + gi, velocity, g)
            params = jax.tree_util.tree_map(lambda p, v, gi: p - 0.01 * (gi + 0.9 * v), params, velocity, g)
            return (params, velocity), None
        nb = n // 128
        xs = jnp.asarray(X[:nb * 128].reshape(nb, 128, 784)); ys = jnp.asarray(y[:nb * 128].reshape(nb, 128))
        state, _ = jax.jit(lambda s, b: jax.lax.scan(step, s, b))((params, velocity), (xs, ys))
        jax.block_until_ready(state)
        extra = {}
    """,
}

EPILOGUE = textwrap.dedent("""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(dict(extra, peak_mb=peak, before_mb=base, data_mb=X.nbytes / 2**20)))
""")


def measure(name, samples):
    code = PROLOGUE + textwrap.dedent(RUNNERS[name]) + EPILOGUE
    result = subprocess.run([sys.executable, "-c", code, str(samples)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        return None, result.stderr.strip().splitlines()[-1] if result.stderr else "failed"
    return json.loads(result.stdout.strip().splitlines()[-1]), None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60000)
    args = parser.parse_args(argv)
    print("| framework | peak RSS MB | RSS before training MB | data MB | bound MB |")
    print("|---|---|---|---|---|")
    bound = None
    for name in RUNNERS:
        row, error = measure(name, args.samples)
        if row is None:
            print(f"| {name} | skipped: {error} | | | |")
            continue
        if name == "gdcore":
            bound = row["before_mb"] + 3 * row["params_mb"] + row["workspace_mb"] + 40
        print(f"| {name} | {row['peak_mb']:.0f} | {row['before_mb']:.0f} | {row['data_mb']:.0f} | "
              + (f"{bound:.0f} |" if name == "gdcore" else " |"))
    print("\nbound = RSS with the data loaded + 3 × parameters + workspace + 40 MB (gdcore's row)")


if __name__ == "__main__":
    main()
