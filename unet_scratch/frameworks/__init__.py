"""The frameworks the scratch model is checked against. Everything here imports TensorFlow/Keras lazily.

    imports          import_tensorflow(), import_keras(): quiet imports with an install hint
    tolerances       how close scratch and framework must agree, in one place
    keras_model      build_keras_unet(): the source article's U-Net in Keras 3
    keras_transfer   to_keras(), from_keras(), config_from_keras(): weights across, checked
    parity           compare() (per layer, teacher-forced gradients) and lockstep() (training side by side)
    keras_fit        fit_keras(): the Keras twin trained on the same batches as training.fit

The names users need are re-exported by :mod:`unet_scratch.keras_ref`.
"""
