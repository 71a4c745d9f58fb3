"""A short fit touching every part of the C core, run under valgrind by .ci/sanitize (not a
pytest module: its name does not start with test_)."""
import numpy as np

import gdcore as gd

rng = np.random.default_rng(0)
X = rng.normal(size=(300, 20)).astype(np.float32)
y = rng.integers(0, 3, 300)
model = gd.Sequential([gd.Dense(20, 32, "relu"), gd.Dropout(0.2), gd.Dense(32, 16, "gelu"),
                       gd.Dense(16, 3)], seed=0)
model.fit(X, y, optimizer=gd.optim.Adam(), epochs=2, batch_size=64, n_threads=2,
          sample_weight=rng.random(300), schedule="cosine", verbose=0)
model.fit(X, y, optimizer=gd.optim.SGD(lr=0.1, momentum=0.9, nesterov=True), epochs=1,
          batch_size=300, l1=1e-4, l2=1e-3, verbose=0)
for loss in ("mse", "mae", "huber", "binary_cross_entropy"):
    model.loss_and_grad(X, (y[:, None] == np.arange(3)).astype(np.float32), loss=loss)
model.loss_and_grad(X, y, loss="hinge")
model.train_step(X[:10], y[:10], optimizer="rmsprop")
model.predict(X)
model.predict(X[:1])
print("memcheck fit ok", model.evaluate(X, y))
