"""Training the Keras twin on the same batches as :func:`unet_scratch.training.fit`."""
from __future__ import annotations

from .imports import import_keras
from .keras_transfer import to_keras


def fit_keras(model, train, val=None, epochs=1, batch_size=4, learning_rate=1e-3, loss="bce", augment=False,
              seed=0, lr_schedule=None, keras_model=None, verbose=0):
    """Train the Keras twin of a scratch ``model`` the way :func:`unet_scratch.training.fit` trains it.

    The Keras model starts from ``model``'s current weights (copy them before training the scratch one),
    sees exactly the same batches in the same order with the same augmentation (``training.make_batch``),
    and uses Keras's Adam and Keras's losses ("bce": BinaryCrossentropy; "dice": Dice; "bce_dice": both),
    with the same ``lr_schedule`` (epoch -> learning rate) if one is given.
    Only dropout masks differ (Keras draws its own). Returns (History, keras_model); the history has the
    keys of ``fit``'s ("loss", "dice", "val_loss", "val_dice", "seconds").
    """
    import math
    import time

    from .. import metrics, training
    keras = import_keras()
    if loss not in ("bce", "dice", "bce_dice"):
        raise ValueError(f"fit_keras supports the sigmoid-head losses 'bce', 'dice', 'bce_dice', not {loss!r}")
    keras_model = to_keras(model, keras_model)
    bce, dice = keras.losses.BinaryCrossentropy(), keras.losses.Dice()
    loss_fn = {"bce": bce, "dice": dice, "bce_dice": lambda t, p: bce(t, p) + dice(t, p)}[loss]
    keras_model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss_fn,
                        jit_compile=False)
    data = training.prepare(model, *train, name="train")
    val_data = training.prepare(model, *val, name="val") if val is not None else None
    n = len(data[0])
    history = training.History()
    for epoch in range(int(epochs)):
        order = training.epoch_order(n, seed, epoch)
        if lr_schedule is not None:
            keras_model.optimizer.learning_rate.assign(float(lr_schedule(epoch)))
        loss_sum, inter, total, t0 = 0.0, 0, 0, time.perf_counter()
        steps = math.ceil(n / batch_size)
        for step in range(steps):
            xb, tb, _ = training.make_batch(data, order, step, batch_size, seed, epoch, augment)
            p = keras_model([xb], training=False).numpy()     # the prediction before this step's update,
            loss_sum += float(keras_model.train_on_batch([xb], tb))  # as fit() measures its running metrics
            a, b = metrics.dice_counts(p, tb)
            inter, total = inter + a, total + b
        logs = {"loss": loss_sum / steps, "dice": metrics.dice_from_counts(inter, total)}
        if val_data is not None:
            x, t, _ = val_data
            p = keras_model.predict([x], batch_size=batch_size, verbose=0)
            a, b = metrics.dice_counts(p, t)
            # evaluate() computes the loss on the model's symbolic output, so BinaryCrossentropy uses the
            # head's logits as in training (on predict()'s plain probabilities it would clip instead)
            logs["val_loss"] = float(keras_model.evaluate([x], t, batch_size=batch_size, verbose=0))
            logs["val_dice"] = metrics.dice_from_counts(a, b)
        logs["seconds"] = time.perf_counter() - t0
        history.append(epoch, logs)
        if verbose:
            print(f"keras epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))
    return history, keras_model
